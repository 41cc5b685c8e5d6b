"""ONNX export of a trained policy for deployment.

Three kinds of actor: the universal token policy (below), a plain MLP actor (the locomotion
teachers and students: its observation groups in -> action mean, `policy.onnx`) and a recurrent
actor (`policy.onnx` as one step with its state in and out, metadata.json's
`models.policy.recurrent_state` says how to carry it; gear_sonic/eval/onnx_recurrent.py). For the
universal token policy `export_onnx` writes, next to each other:

* `policy_<encoder>.onnx` per encoder: the encoder's tokenizer terms + the proprioception that
  g1_dyn reads -> encoder -> FSQ -> g1_dyn -> action mean. Inputs are named after the obs terms.
* `decoder_g1_dyn.onnx`: tokens (N, num_tokens, token_dim) + g1_dyn's other terms -> actions,
  for planners / VLAs that produce tokens themselves.
* `metadata.json`: joints, PD gains, default pose, action scale, observation layout, encoders,
  FSQ levels and token count (see `metadata_from_env`).

Every model has a dynamic batch dimension. FSQ is written out in plain torch ops (tanh, round)
so it exports with opset 17; `FSQQuantize` mirrors vector_quantize_pytorch's default FSQ bound.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from gear_sonic.eval import onnx_recurrent
from gear_sonic.trl.modules.base_module import as_shape
from gear_sonic.trl.modules.universal_token_modules import UniversalTokenModule

OPSET = 17
POLICY_STEM = "policy"  # a plain (MLP) actor's one model: policy.onnx
TOKENS_INPUT = "tokens"
ACTIONS_OUTPUT = "actions"
GOAL_TERM = "goal_position_b"  # the balance task's goal observation (mdp/balance.py)


class FSQQuantize(nn.Module):
    """FSQ's default (non-symmetric, tanh-bounded) quantisation with plain, exportable ops.

    z (..., D) -> round(tanh(z + shift) * half_l - offset) / (L // 2), per dim with L levels.
    """

    def __init__(self, levels: Sequence[int], eps: float = 1e-3):
        super().__init__()
        levels_t = torch.tensor([float(level) for level in levels])
        half_l = (levels_t - 1) * (1 + eps) / 2
        offset = torch.where(levels_t.long() % 2 == 0, 0.5, 0.0)
        self.register_buffer("half_l", half_l)
        self.register_buffer("offset", offset)
        self.register_buffer("shift", torch.atanh(offset / half_l))
        self.register_buffer("half_width", (levels_t.long() // 2).float())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        bounded = torch.tanh(z + self.shift) * self.half_l - self.offset
        return torch.round(bounded) / self.half_width


def _check_quantizer(module: UniversalTokenModule) -> None:
    quantizer = module.quantizer
    unsupported = [
        flag
        for flag in ("preserve_symmetry", "bound_hard_clamp", "orthogonal_rotation")
        if getattr(quantizer, flag, False)
    ]
    if unsupported or not isinstance(quantizer.project_in, nn.Identity):
        raise NotImplementedError(
            "ONNX export supports FSQ's default bound only; "
            f"quantizer uses {unsupported or 'projections'}"
        )


def _decoder_terms(module: UniversalTokenModule) -> list[str]:
    return [t for t in module.decoders["g1_dyn"].input_terms if t != TOKENS_INPUT]


class EncoderPolicy(nn.Module):
    """One encoder path: named obs terms (positional, in `input_names` order) -> action mean."""

    def __init__(self, module: UniversalTokenModule, encoder: str):
        super().__init__()
        self.encoder = module.encoders[encoder]
        self.decoder = module.decoders["g1_dyn"]
        self.quantize = FSQQuantize(module.fsq_levels)
        names = list(self.encoder.input_terms)
        names += [t for t in _decoder_terms(module) if t not in names]
        self.input_names = names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        obs = dict(zip(self.input_names, inputs))
        tokens = self.quantize(self.encoder({t: obs[t] for t in self.encoder.input_terms}))
        obs[TOKENS_INPUT] = tokens
        return self.decoder(obs)


class TokenDecoder(nn.Module):
    """g1_dyn alone: tokens + its other input terms -> action mean."""

    def __init__(self, module: UniversalTokenModule):
        super().__init__()
        self.decoder = module.decoders["g1_dyn"]
        self.num_tokens, self.token_dim = module.num_tokens, module.token_dim
        self.input_names = [TOKENS_INPUT, *_decoder_terms(module)]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        obs = dict(zip(self.input_names, inputs))
        obs[TOKENS_INPUT] = obs[TOKENS_INPUT].reshape(-1, self.num_tokens, self.token_dim)
        return self.decoder(obs)


def _term_shapes(module: UniversalTokenModule, obs_shapes: Mapping) -> dict[str, tuple[int, ...]]:
    shapes = {k: as_shape(v) for k, v in obs_shapes.get("tokenizer_obs", {}).items()}
    for group, shape in obs_shapes.items():
        if not isinstance(shape, Mapping):
            shapes[group] = as_shape(shape)
    shapes[TOKENS_INPUT] = (module.num_tokens, module.token_dim)
    return shapes


def _export(wrapper: nn.Module, shapes: Mapping[str, tuple[int, ...]], path: Path) -> Path:
    names = wrapper.input_names
    missing = [n for n in names if n not in shapes]
    if missing:
        raise KeyError(f"{path.name}: no shape for inputs {missing}; known {sorted(shapes)}")
    args = tuple(torch.zeros(2, *shapes[n]) for n in names)
    dynamic = {n: {0: "batch"} for n in [*names, ACTIONS_OUTPUT]}
    torch.onnx.export(
        wrapper,
        args,
        str(path),
        input_names=names,
        output_names=[ACTIONS_OUTPUT],
        dynamic_axes=dynamic,
        opset_version=OPSET,
        dynamo=False,
    )
    return path


class GroupPolicy(nn.Module):
    """A plain actor backbone: its observation groups (positional, in `input_names` order) ->
    action mean. Any BaseModule-style backbone with `input_terms` (whole groups) exports."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        if getattr(backbone, "is_recurrent", False):
            raise TypeError(f"{type(backbone).__name__} is recurrent: export_onnx writes it "
                            "with gear_sonic.eval.onnx_recurrent (state in and out)")
        self.backbone = backbone
        self.input_names = list(backbone.input_terms)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.backbone(dict(zip(self.input_names, inputs)))


def _export_group_policy(actor: nn.Module, obs_shapes: Mapping, out_dir: Path,
                         metadata: Mapping | None) -> list[Path]:
    backbone = getattr(actor, "backbone", actor)
    if onnx_recurrent.recurrent_backbone_of(actor) is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        return _export_recurrent_policy(actor, obs_shapes, out_dir, metadata)
    if not hasattr(backbone, "input_terms"):
        raise TypeError(f"export_onnx: the actor's backbone {type(backbone).__name__} names no "
                        "input groups (input_terms)")
    shapes = {g: as_shape(v) for g, v in obs_shapes.items() if not isinstance(v, Mapping)}
    out_dir.mkdir(parents=True, exist_ok=True)
    wrapper = GroupPolicy(backbone)
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            path = _export(wrapper.eval(), shapes, out_dir / f"{POLICY_STEM}.onnx")
            output_dim = int(wrapper(*(torch.zeros(1, *shapes[n]) for n in wrapper.input_names))
                             .shape[-1])
    finally:
        backbone.train(was_training)
    meta = dict(metadata or {})
    meta.update(models={POLICY_STEM: {
        "file": path.name, "inputs": {n: [-1, *shapes[n]] for n in wrapper.input_names},
        "outputs": {ACTIONS_OUTPUT: [-1, output_dim]}}}, opset=OPSET)
    return [path, _write_metadata(meta, obs_shapes, out_dir)]


def _export_recurrent_policy(actor: nn.Module, obs_shapes: Mapping, out_dir: Path,
                             metadata: Mapping | None) -> list[Path]:
    """policy.onnx as one recurrent step: (groups..., state_in) -> (actions, state_out)."""
    backbone = onnx_recurrent.recurrent_backbone_of(actor)
    path = onnx_recurrent.export_recurrent_policy(actor, out_dir / f"{POLICY_STEM}.onnx")
    meta = dict(metadata or {})
    meta.update(models={POLICY_STEM: onnx_recurrent.model_entry(backbone, path.name)},
                opset=OPSET)
    return [path, _write_metadata(meta, obs_shapes, out_dir)]


def _write_metadata(meta: dict, obs_shapes: Mapping, out_dir: Path) -> Path:
    meta.setdefault("observation_shapes", _shapes_to_json(obs_shapes))
    _keep_read_groups(meta)
    meta_path = out_dir / "metadata.json"
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta_path


def _keep_read_groups(meta: dict) -> None:
    """The observation contract of the groups the exported models read, and no other (the
    critic's and a teacher's stay in training)."""
    contract = meta.get("observation_contract")
    if not contract:
        return
    inputs = {n for model in meta["models"].values() for n in model["inputs"]}
    meta["observation_contract"] = {
        group: spec for group, spec in contract.items()
        if group in inputs or any(t["name"] in inputs for t in spec["terms"])}


def backbone_of(actor: nn.Module) -> UniversalTokenModule:
    backbone = getattr(actor, "backbone", actor)
    if not isinstance(backbone, UniversalTokenModule):
        kind = type(backbone).__name__
        raise TypeError(f"export_onnx needs a UniversalTokenModule backbone, got {kind}")
    return backbone


def export_onnx(
    actor: nn.Module, obs_shapes: Mapping, out_dir: str | Path, metadata: Mapping | None = None
) -> list[Path]:
    """Write policy_<encoder>.onnx per encoder, decoder_g1_dyn.onnx and metadata.json.

    actor: an `Actor` around a UniversalTokenModule (or the module itself).
    obs_shapes: the wrapper's `observation_shapes` (groups -> shape, tokenizer_obs -> terms).
    metadata: robot/env facts (e.g. from `metadata_from_env`); the model facts are added here.
    """
    if not isinstance(getattr(actor, "backbone", actor), UniversalTokenModule):
        return _export_group_policy(actor, obs_shapes, Path(out_dir), metadata)
    module = backbone_of(actor)
    _check_quantizer(module)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shapes = _term_shapes(module, obs_shapes)
    paths: list[Path] = []
    models: dict[str, dict] = {}
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            wrappers = {f"policy_{name}": EncoderPolicy(module, name) for name in module.encoders}
            wrappers["decoder_g1_dyn"] = TokenDecoder(module)
            for stem, wrapper in wrappers.items():
                paths.append(_export(wrapper.eval(), shapes, out_dir / f"{stem}.onnx"))
                models[stem] = {
                    "file": f"{stem}.onnx",
                    "inputs": {n: [-1, *shapes[n]] for n in wrapper.input_names},
                    "outputs": {ACTIONS_OUTPUT: [-1, module.decoders["g1_dyn"].output_dim]},
                }
    finally:
        module.train(was_training)

    meta = dict(metadata or {})
    meta.update(
        encoder_names=list(module.encoder_names),
        exported_encoders=list(module.encoders),
        encoder_priority=list(module.priority),
        fsq_levels=list(module.fsq_levels),
        num_tokens=module.num_tokens,
        token_dim=module.token_dim,
        models=models,
        opset=OPSET,
    )
    meta.setdefault("observation_shapes", _shapes_to_json(obs_shapes))
    _keep_read_groups(meta)
    meta_path = out_dir / "metadata.json"
    meta_path.write_text(json.dumps(meta, indent=2))
    paths.append(meta_path)
    return paths


def _shapes_to_json(obs_shapes: Mapping) -> dict:
    out = {}
    for group, shape in obs_shapes.items():
        if isinstance(shape, Mapping):
            out[group] = {k: list(as_shape(v)) for k, v in shape.items()}
        else:
            out[group] = list(as_shape(shape))
    return out


# ---------------------------------------------------------------- robot metadata
def _resolve(patterns: Mapping[str, float], names: Sequence[str], what: str) -> list[float]:
    values = []
    for name in names:
        hits = [v for p, v in patterns.items() if re.fullmatch(p, name)]
        if not hits:
            raise KeyError(f"no {what} pattern matches joint {name!r}")
        values.append(float(hits[0]))
    return values


def g1_metadata() -> dict:
    """G1 joints, PD gains, default pose and action scale from mjlab's asset zoo (no env needed)."""
    from mjlab.asset_zoo.robots.unitree_g1 import g1_constants as g1c

    from gear_sonic.envs.manager_env.robots.g1 import G1_JOINT_NAMES

    kp, kd = {}, {}
    for actuator in g1c.G1_ARTICULATION.actuators:
        for pattern in actuator.target_names_expr:
            kp[pattern] = actuator.stiffness
            kd[pattern] = actuator.damping
    default = dict(g1c.KNEES_BENT_KEYFRAME.joint_pos)
    default_pose = [
        float(next((v for p, v in default.items() if re.fullmatch(p, n)), 0.0))
        for n in G1_JOINT_NAMES
    ]
    return {
        "robot": "g1",
        "joint_names": list(G1_JOINT_NAMES),
        "kp": _resolve(kp, G1_JOINT_NAMES, "stiffness"),
        "kd": _resolve(kd, G1_JOINT_NAMES, "damping"),
        "default_joint_pos": default_pose,
        "action_scale": _resolve(g1c.G1_ACTION_SCALE, G1_JOINT_NAMES, "action scale"),
        "default_root_height": float(g1c.KNEES_BENT_KEYFRAME.pos[2]),
    }


def metadata_from_env(env) -> dict:
    """Metadata of a built env (`ManagerEnvWrapper`): joints and gains as the env uses them.

    Joint order, default pose and action scale/offset come from the env's joint_pos action term;
    kp/kd from mjlab's G1 actuator configuration for the G1, else from the compiled model's
    position actuators (what the env simulates); observation layout from the wrapper.
    """
    term = env.env.action_manager.get_term("joint_pos")
    robot = env.env.scene["robot"]
    joint_names = list(robot.joint_names)
    meta = g1_metadata() if joint_names == g1_joint_names() else _model_metadata(env)
    # term.scale is per joint, or per env and joint (N, J): every env has the same scale.
    scale = torch.as_tensor(term.scale, dtype=torch.float).reshape(-1)
    scale = scale.expand(len(joint_names)) if scale.numel() == 1 else scale[-len(joint_names):]
    meta["action_scale"] = [float(v) for v in scale]
    meta["default_joint_pos"] = [float(v) for v in robot.data.default_joint_pos[0]]
    meta["default_root_state"] = [float(v) for v in robot.data.default_root_state[0]]
    meta["action_term"] = type(term).__name__
    meta["reference_relative_actions"] = "Reference" in type(term).__name__
    meta["step_dt"] = float(env.step_dt)
    meta["action_clip"] = env.action_clip
    meta["observation_shapes"] = _shapes_to_json(env.observation_shapes)
    meta["observation_terms"] = {
        group: [name for name, _ in terms] for group, terms in env.term_layout.items()
    }
    meta.update(deploy_contract(env))
    return meta


def g1_joint_names() -> list[str]:
    from gear_sonic.envs.manager_env.robots.g1 import G1_JOINT_NAMES

    return list(G1_JOINT_NAMES)


def _model_metadata(env) -> dict:
    """Robot name and PD gains of any robot, read from the env's compiled model."""
    from gear_sonic.envs.manager_env.robots import ROBOTS

    robot = env.env.scene["robot"]
    joint_names = list(robot.joint_names)
    name = next((spec.name for spec in ROBOTS.values()
                 if list(spec.joint_names) == joint_names), "robot")
    model = env.env.sim.mj_model
    by_joint = {int(model.actuator_trnid[a, 0]): a for a in range(model.nu)
                if model.actuator_trntype[a] == mujoco_joint_transmission()}
    kp, kd = [], []
    for joint in joint_names:
        index = next(j for j in range(model.njnt)
                     if model.joint(j).name == joint or model.joint(j).name.endswith("/" + joint))
        if index not in by_joint:
            raise ValueError(f"joint {joint!r} has no actuator in the env's model")
        actuator = by_joint[index]
        kp.append(float(model.actuator_gainprm[actuator, 0]))
        kd.append(float(-model.actuator_biasprm[actuator, 2]))
    return {"robot": name, "joint_names": joint_names, "kp": kp, "kd": kd}


def mujoco_joint_transmission() -> int:
    import mujoco

    return int(mujoco.mjtTrn.mjTRN_JOINT)


def deploy_contract(env) -> dict:
    """What gear_sonic/deploy needs to rebuild the policy's inputs without the env.

    sim: physics step and decimation. observation_contract: per group, each term's function
    name, params (an entity selection as resolved names), per-step shape, history length, clip
    and scale, in env order (export_onnx keeps the groups its models read). command: the
    tracking command's bodies, VR points, joint subsets and future-frame offsets, a velocity
    command's name and ranges, or a goal (the balance task). terminations: each term's function and plain params.
    """
    manager = env.env.observation_manager
    contract = {}
    for group in env.term_layout:
        terms = []
        for name, dims in env.term_layout[group]:
            cfg = manager.get_term_cfg(group, name)
            history = int(cfg.history_length or 0)
            shape = list(dims)
            if history and cfg.flatten_history_dim:
                shape = [shape[0] // history, *shape[1:]]
            elif history:
                shape = shape[1:]
            terms.append({
                "name": name,
                "func": getattr(cfg.func, "__name__", type(cfg.func).__name__),
                "params": _plain_params(env, cfg.params),
                "shape": shape,
                "history_length": history,
                "clip": list(cfg.clip) if cfg.clip else None,
                "scale": _plain_scale(cfg.scale),
            })
        contract[group] = {"concatenate": bool(manager.group_obs_concatenate[group]),
                           "terms": terms}
    out = {
        "sim": {"physics_dt": float(env.env.physics_dt), "decimation": int(env.env.cfg.decimation)},
        "observation_contract": contract,
    }
    commands = env.env.command_manager
    command = commands.get_term("motion") if "motion" in getattr(commands, "active_terms", []) \
        else None
    if command is not None and hasattr(command, "future_offsets"):
        joints = list(env.env.scene["robot"].joint_names)
        out["command"] = {
            "anchor_body": command.cfg.anchor_body_name,
            "body_names": list(command.body_names),
            "vr_body_names": list(command.cfg.vr_body_names),
            "vr_body_offsets": [list(map(float, o)) for o in command.cfg.vr_body_offsets],
            "wrist_joint_names": [joints[i] for i in command.wrist_joint_ids.tolist()],
            "lower_body_joint_names": [joints[i] for i in command.lower_body_joint_ids.tolist()],
            "future_frame_offsets": command.future_offsets.tolist(),
            "smpl_future_frame_offsets": command.smpl_future_offsets.tolist(),
            "encoder_names": list(command.encoder_names),
        }
    velocity = _velocity_command(env)
    if velocity is not None:
        out["command"] = velocity
    if any(t["func"] == GOAL_TERM for spec in contract.values() for t in spec["terms"]):
        out["command"] = _goal_command(env)
    terminations = env.env.termination_manager
    out["terminations"] = {
        name: {"func": getattr(cfg.func, "__name__", type(cfg.func).__name__),
               "params": _plain_params(env, cfg.params)}
        for name in terminations.active_terms
        for cfg in [terminations.get_term_cfg(name)]}
    return out


def _goal_command(env) -> dict:
    """A goal-reaching task (go2_balance): the deploy loop takes the goal from the command
    line (x, y metres from the start) and reads it as GOAL_TERM; the root stands in for the
    tracked bodies."""
    root = env.env.scene["robot"].body_names[0]
    return {"kind": "goal", "command_name": "goal", "anchor_body": root, "body_names": [root]}


def _velocity_command(env) -> dict | None:
    """A base-velocity command (mjlab's UniformVelocityCommand): the deploy loop takes it from
    the command line; the root body stands in for the tracked bodies."""
    commands = env.env.command_manager
    for name in getattr(commands, "active_terms", []):
        term = commands.get_term(name)
        if hasattr(term, "vel_command_b"):
            root = env.env.scene["robot"].body_names[0]
            ranges = term.cfg.ranges
            return {"kind": "velocity", "command_name": name, "anchor_body": root,
                    "body_names": [root],
                    "ranges": {k: list(map(float, getattr(ranges, k))) for k in
                               ("lin_vel_x", "lin_vel_y", "ang_vel_z")}}
    return None


def _plain_params(env, params) -> dict:
    """JSON-able params; an entity selection (SceneEntityCfg) becomes its resolved names."""
    out = {}
    for key, value in (params or {}).items():
        if _is_plain(value):
            out[key] = value
        elif hasattr(value, "geom_ids") and hasattr(value, "name"):
            out[key] = _entity_selection(env, value)
    return out


def _entity_selection(env, cfg) -> dict:
    entity = env.env.scene[cfg.name]
    out = {"name": cfg.name}
    for kind in ("joint", "body", "geom"):
        if getattr(cfg, f"{kind}_names", None) is None:
            continue
        names = list(getattr(entity, f"{kind}_names"))
        ids = getattr(cfg, f"{kind}_ids")
        out[f"{kind}_names"] = names[ids] if isinstance(ids, slice) else [names[i] for i in ids]
    return out


def _is_plain(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple))


def _plain_scale(scale):
    if scale is None:
        return None
    if isinstance(scale, (int, float)):
        return float(scale)
    return [float(v) for v in torch.as_tensor(scale).reshape(-1)]



# ---------------------------------------------------------------- export of a run
def export_run(train_cfg, state: Mapping, checkpoint: Path, out_dir: str | Path,
               device: str = "cpu") -> list[Path]:
    """+export_onnx_only for a task that neither tracks motions nor follows velocity commands
    (go2_balance): a 1-env copy of the training env without noise or training-only events,
    the checkpoint's actor, then the ONNX models + metadata.json in out_dir and the deploy
    bundle in out_dir/deploy. An MLP or a recurrent actor (state in and out) alike."""
    import copy

    from omegaconf import OmegaConf

    from gear_sonic.eval.evaluate import env_with_actor

    cfg = copy.deepcopy(train_cfg)
    OmegaConf.set_struct(cfg, False)
    env_cfg = cfg.manager_env
    env_cfg.events = {k: v for k, v in (env_cfg.get("events") or {}).items()
                      if not v.get("train_only")}
    for group in env_cfg.observations.values():
        group.enable_corruption = False
    cfg.num_envs = 1
    out_dir = Path(out_dir)
    env, actor = env_with_actor(cfg, state, str(checkpoint), 1, device)
    try:
        return export_env_actor(actor, env, out_dir)
    finally:
        env.close()


def export_env_actor(actor, env, out_dir: Path) -> list[Path]:
    """The actor's ONNX models + metadata.json in out_dir, and in out_dir/deploy the bundle that
    gear_sonic/deploy/run_policy.py runs as is (+ robot.mjb, README.md)."""
    from gear_sonic.deploy.bundle import write_deploy_bundle

    paths = export_onnx(actor, env.observation_shapes, out_dir, metadata=metadata_from_env(env))
    return paths + write_deploy_bundle(actor, env, out_dir / "deploy")
