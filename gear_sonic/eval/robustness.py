"""Robustness benchmark: survival and completion of a policy under growing perturbations.

Each perturbation kind is played at each of its levels, one level at a time, every other kind
at its nominal value. A trial plays a reference clip from frame 0 for `max_steps` control steps
(or the whole clip); it *completes* when the robot does not fall (evaluation's terminations) in
that time. Per level:

* `robustness/<kind>/<level>/completion`: fraction of trials completed without a fall;
* `robustness/<kind>/<level>/survival`: mean fraction of the trial played before the fall
  (1 for completed trials), so early and late falls are told apart;
* `robustness/score` in [0, 1]: the mean over kinds of each kind's mean completion over its
  levels (every kind weighs the same whatever its number of levels).

Kinds and units (config/robustness/default.yaml):

* push: base-velocity change in m/s, horizontal, random direction, at a random step;
* friction: scale on every geom's sliding friction (floor and robot);
* mass: kg added to `mass_body` (default: the tracking command's anchor body, e.g. torso_link);
* delay: control steps between the policy's action and its use;
* obs_noise: Gaussian noise on each policy-input term, std = level x that term's RMS value.

Two backends run the same trials: `env` (the training env, batched: one env per trial, all
trials of a level in one rollout) and `deploy` (gear_sonic/deploy in plain MuJoCo, torch-free,
one trial after another). Random draws (push step and direction, noise) come from `seed`, the
same for every level, so levels differ only by their perturbation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gear_sonic.deploy.perturb import KINDS, MODEL_KINDS, NOISELESS_TERMS, trial_plan

NOMINAL = {"push": 0.0, "friction": 1.0, "mass": 0.0, "delay": 0.0, "obs_noise": 0.0}
BACKENDS = ("env", "deploy")
# A locomotion (velocity-command) policy's trials: this command, max_steps (or 500) steps.
DEFAULT_VELOCITY_COMMAND = (0.5, 0.0, 0.0)
VELOCITY_TRIAL_STEPS = 500
# Groups the universal token policy reads (the critic's stay in training); a plain MLP actor
# names its own (e.g. a distilled student's student_obs).
POLICY_GROUPS = ("actor_obs", "tokenizer_obs")


class RobustnessConfigError(ValueError):
    """Bad robustness settings; the message names the key and how to fix it."""


@dataclass(frozen=True)
class Level:
    kind: str
    value: float

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.value:g}"


@dataclass(frozen=True)
class RobustnessSpec:
    levels: tuple[Level, ...]
    trials: int
    seed: int
    max_steps: int | None
    mass_body: str | None
    velocity_command: tuple[float, float, float] = DEFAULT_VELOCITY_COMMAND


@dataclass(frozen=True)
class LevelResult:
    level: Level
    completion: float
    survival: float
    trials: int


def parse_spec(cfg: Mapping, where: str = "") -> RobustnessSpec:
    """Check and read the settings (config/robustness/default.yaml's keys; `where` prefixes
    them in errors when they sit deeper in another config, e.g. "robustness.")."""
    perturbations = cfg.get("perturbations")
    if not isinstance(perturbations, Mapping) or not perturbations:
        raise RobustnessConfigError(f"{where}perturbations: give a mapping kind -> levels, "
                                    f"kinds {list(KINDS)}")
    levels = []
    for kind, values in perturbations.items():
        if kind not in KINDS:
            raise RobustnessConfigError(f"{where}perturbations.{kind}: unknown perturbation; "
                                        f"choose from {list(KINDS)}")
        if values is None:
            continue  # `perturbations.push=null` leaves a kind out
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise RobustnessConfigError(f"{where}perturbations.{kind}: the level list is empty "
                                        f"or not a list; give levels, e.g. [{NOMINAL[kind]:g}, "
                                        "...], or null to leave the kind out")
        for value in values:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or \
                    not math.isfinite(value) or value < 0:
                raise RobustnessConfigError(f"{where}perturbations.{kind}: level {value!r} is "
                                            "not a finite number >= 0")
            if kind == "delay" and int(value) != value:
                raise RobustnessConfigError(f"{where}perturbations.delay: level {value!r} is "
                                            "not a whole number of control steps")
            levels.append(Level(kind, float(value)))
    if not levels:
        raise RobustnessConfigError(f"{where}perturbations: every kind is null; give at least "
                                    "one level")
    trials = _positive_int(cfg.get("trials", 8), f"{where}trials")
    max_steps = cfg.get("max_steps")
    max_steps = None if max_steps is None else _positive_int(max_steps, f"{where}max_steps")
    command = cfg.get("velocity_command") or DEFAULT_VELOCITY_COMMAND
    if len(command) != 3 or not all(isinstance(v, (int, float)) for v in command):
        raise RobustnessConfigError(f"{where}velocity_command: {command!r} is not [vx, vy, wz]")
    return RobustnessSpec(levels=tuple(levels), trials=trials, seed=int(cfg.get("seed", 0)),
                          max_steps=max_steps, mass_body=cfg.get("mass_body"),
                          velocity_command=tuple(float(v) for v in command))


def _positive_int(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RobustnessConfigError(f"{key}: {value!r} is not a positive whole number")
    return value


def level_result(level: Level, fell: np.ndarray, steps: np.ndarray,
                 horizon: np.ndarray) -> LevelResult:
    fell, steps, horizon = (np.asarray(a) for a in (fell, steps, horizon))
    played = np.where(fell, steps / np.maximum(horizon, 1), 1.0)
    return LevelResult(level, completion=float(np.mean(~fell)), survival=float(np.mean(played)),
                       trials=int(fell.size))


def score(results: Sequence[LevelResult]) -> float:
    per_kind: dict[str, list[float]] = {}
    for r in results:
        per_kind.setdefault(r.level.kind, []).append(r.completion)
    return float(np.mean([np.mean(v) for v in per_kind.values()])) if per_kind else 0.0


def metrics(results: Sequence[LevelResult]) -> dict[str, float]:
    """Flat `robustness/*` keys for metrics_eval.json."""
    out = {"robustness/score": score(results)}
    for r in results:
        out[f"robustness/{r.level.key}/completion"] = r.completion
        out[f"robustness/{r.level.key}/survival"] = r.survival
    return out


def robustness_rows(metrics_json: Mapping) -> list[dict]:
    """(kind, level, completion, survival) rows read back from flat keys (the report's table)."""
    rows: dict[tuple[str, str], dict] = {}
    for key, value in metrics_json.items():
        parts = key.split("/")
        if len(parts) == 4 and parts[0] == "robustness":
            row = rows.setdefault((parts[1], parts[2]), {"kind": parts[1], "level": parts[2]})
            row[parts[3]] = value
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(rows.values(), key=lambda r: (order.get(r["kind"], len(KINDS)),
                                                _as_float(r["level"])))


def _as_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.inf


def _log_level(result: LevelResult, log) -> None:
    if log is not None:
        log(f"{result.level.key:>18}: completion {result.completion:.2f}, "
            f"survival {result.survival:.2f} ({result.trials} trials)")


# ---------------------------------------------------------------- deploy backend (torch-free)
def run_deploy(deploy_dir: str | Path, motion_files: Sequence[str | Path], spec: RobustnessSpec,
               encoder: str = "g1", log=None) -> list[LevelResult]:
    """Every level on gear_sonic/deploy: `spec.trials` trials, clips taken in turn."""
    from gear_sonic.deploy.commands import CommandSchedule
    from gear_sonic.deploy.contract import load_contract
    from gear_sonic.deploy.loop import DeployLoop
    from gear_sonic.deploy.perturb import ModelPerturbation, run_trial

    if load_contract(deploy_dir).command.get("kind") == "velocity":
        command = ",".join(map(str, spec.velocity_command))
        loops = [DeployLoop(deploy_dir, commands=CommandSchedule.constant(command))]
    elif motion_files:
        loops = [DeployLoop(deploy_dir, f, encoder=encoder) for f in motion_files]
    else:
        raise RobustnessConfigError("motion_file: no motion clips to play; give a clip or folder")
    results = []
    for level in spec.levels:
        rng = np.random.default_rng(spec.seed)
        outcomes = []
        for trial in range(spec.trials):
            loop = loops[trial % len(loops)]
            body = loop.contract.model_name_prefix + (spec.mass_body or _default_mass_body(loop))
            perturbation = ModelPerturbation(loop.robot.model, loop.robot.data, body)
            horizon = _trial_steps(loop.motion.num_frames - 1 if loop.motion else None, spec)
            outcomes.append(run_trial(loop, level.kind, level.value, rng, horizon, perturbation))
        result = level_result(level, np.array([o.fell for o in outcomes]),
                              np.array([o.steps for o in outcomes]),
                              np.array([o.horizon for o in outcomes]))
        _log_level(result, log)
        results.append(result)
    return results


def _trial_steps(clip_steps: int | None, spec: RobustnessSpec) -> int:
    """A clip's steps (capped at max_steps), or max_steps / 500 for velocity commands."""
    if clip_steps is None:
        return spec.max_steps or VELOCITY_TRIAL_STEPS
    return min(clip_steps, spec.max_steps) if spec.max_steps is not None else clip_steps


def _default_mass_body(loop) -> str:
    return loop.contract.command.get("anchor_body") or loop.contract.command["body_names"][0]


# ---------------------------------------------------------------- env backend (batched torch)
def run_env(env, actor, spec: RobustnessSpec, encoder: str | None = None,
            log=None) -> list[LevelResult]:
    """Every level on the training env: one env per trial (the env's num_envs trials; the
    script builds it with `trials` envs), all trials of a level in one batched rollout."""
    results = []
    perturber = _EnvModelPerturbation(env, spec.mass_body)
    try:
        for level in spec.levels:
            fell, steps, horizon = _env_level(env, actor, level, spec, perturber, encoder)
            result = level_result(level, fell, steps, horizon)
            _log_level(result, log)
            results.append(result)
    finally:
        perturber.restore()
    return results


class _EnvModelPerturbation:
    """Friction scale / added mass written into the env's (per-world) model fields."""

    def __init__(self, env, mass_body: str | None):
        self.sim = env.env.sim
        self.sim.expand_model_fields(("geom_friction", "body_mass"))
        name = mass_body or _anchor_body(env)
        names = [self.sim.mj_model.body(b).name for b in range(self.sim.mj_model.nbody)]
        hits = [i for i, n in enumerate(names) if n == name or n.endswith("/" + name)]
        if not hits:
            raise RobustnessConfigError(f"mass_body: no body {name!r} in the env's "
                                        "model; name one of the robot's bodies")
        self.body = hits[0]

    def apply(self, kind: str, value: float) -> None:
        from mjlab.managers.event_manager import RecomputeLevel

        self.restore()
        if kind == "friction":
            friction = self.sim.model.geom_friction
            friction[:, :, 0] = self.sim.get_default_field("geom_friction")[:, 0] * value
        elif kind == "mass":
            default = self.sim.get_default_field("body_mass")[self.body]
            self.sim.model.body_mass[:, self.body] = default + value
            self.sim.recompute_constants(RecomputeLevel.set_const)

    def restore(self) -> None:
        from mjlab.managers.event_manager import RecomputeLevel

        self.sim.model.geom_friction[:] = self.sim.get_default_field("geom_friction")
        self.sim.model.body_mass[:] = self.sim.get_default_field("body_mass")
        self.sim.recompute_constants(RecomputeLevel.set_const)


def _anchor_body(env) -> str:
    """The tracking command's anchor body, or the robot's root body for velocity commands."""
    if _is_tracking(env):
        return env.command().cfg.anchor_body_name
    return env.env.scene["robot"].body_names[0]


def _is_tracking(env) -> bool:
    return "motion" in getattr(env.env.command_manager, "active_terms", [])


def _begin_trials(env, spec: RobustnessSpec, encoder):
    """Every env at its trial's start; -> (first observation, steps per trial)."""
    import torch

    n, device = env.num_envs, env.device
    if not _is_tracking(env):
        from gear_sonic.eval.locomotion import hold_commands

        env.reset()
        commands = torch.tensor([spec.velocity_command] * n, device=device)
        steps = torch.full((n,), _trial_steps(None, spec), device=device)
        return hold_commands(env, commands), steps
    from gear_sonic.eval.evaluate import begin_clips

    cmd = env.command()
    slots = torch.arange(n, device=device) % int(cmd.motion.num_clips)
    has_encoders = bool(getattr(cmd, "encoder_names", None))
    obs = begin_clips(env, slots, encoder if has_encoders else None)
    horizon = (cmd.clip_num_frames - 1).clamp(min=1)
    if spec.max_steps is not None:
        horizon = horizon.clamp(max=spec.max_steps)
    return obs, horizon


def _env_level(env, actor, level: Level, spec: RobustnessSpec, perturber, encoder):
    import torch

    from gear_sonic.trl.modules.recurrent_modules import reset_memory

    n, device = env.num_envs, env.device
    rng = np.random.default_rng(spec.seed)
    kind, value = level.kind, level.value
    perturber.apply(kind, value if kind in MODEL_KINDS else 0.0)
    obs, horizon = _begin_trials(env, spec, encoder)
    # The same draws, in the same order per trial, as gear_sonic/deploy/perturb.trial_plan.
    plans = [trial_plan(rng, int(h)) for h in horizon.tolist()]
    push_step = torch.tensor([p[0] for p in plans], device=device)
    push_vel = torch.tensor(np.array([p[1] for p in plans]), dtype=torch.float, device=device)
    pending = [torch.zeros(n, env.num_actions, device=device)] * int(value if kind == "delay"
                                                                     else 0)
    robot = env.env.scene["robot"]
    alive = torch.ones(n, dtype=torch.bool, device=device)
    fell = torch.zeros_like(alive)
    steps = torch.zeros(n, dtype=torch.long, device=device)
    noise = torch.Generator(device=device).manual_seed(spec.seed)
    reset_memory(actor)  # a recurrent policy starts each level with zero memory
    with torch.no_grad():
        for step in range(int(horizon.max())):
            if kind == "obs_noise" and value > 0:
                obs = _noisy(obs, env, value, noise, _policy_groups(env, actor))
            pending.append(actor.act_inference(obs))
            actions = pending.pop(0)
            if kind == "push":
                ids = torch.nonzero(alive & (push_step == step)).flatten()
                if len(ids):
                    vel = robot.data.root_link_vel_w[ids].clone()
                    vel[:, :2] += value * push_vel[ids]
                    robot.write_root_link_velocity_to_sim(vel, env_ids=ids)
            obs, _, done, extras = env.step(actions)
            reset_memory(actor, done)
            terminated = extras["terminated"]
            fell |= alive & terminated
            steps += (alive & ~terminated).long()
            alive &= ~done & (steps < horizon)
            if not alive.any():
                break
    return fell.cpu().numpy(), steps.cpu().numpy(), horizon.cpu().numpy()


def _policy_groups(env, actor) -> tuple[str, ...]:
    names = getattr(getattr(actor, "backbone", actor), "input_terms", None)
    if names and all(n in env.observation_shapes for n in names):
        return tuple(names)
    return POLICY_GROUPS


def _noisy(obs: dict, env, fraction: float, generator, groups: Sequence[str]) -> dict:
    """Policy groups with per-term noise: std = fraction x the term's RMS (per env)."""
    import torch

    def noised(x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        rms = flat.pow(2).mean(dim=1, keepdim=True).sqrt()
        eps = torch.randn(flat.shape, generator=generator, device=flat.device)
        return (flat + fraction * rms * eps).reshape(x.shape)

    out = dict(obs)
    for group in groups:
        value = obs.get(group)
        if isinstance(value, Mapping):
            out[group] = {k: v if k in NOISELESS_TERMS else noised(v) for k, v in value.items()}
        elif value is not None:
            sizes = [math.prod(dims) for _, dims in env.term_layout[group]]
            names = [name for name, _ in env.term_layout[group]]
            parts = torch.split(value, sizes, dim=-1)
            out[group] = torch.cat([p if name in NOISELESS_TERMS else noised(p)
                                    for name, p in zip(names, parts)], dim=-1)
    return out


# ---------------------------------------------------------------- the benchmark from a checkpoint
METRICS_FILE = "metrics_eval.json"


def run_benchmark(cfg) -> Path:
    """scripts/robustness.py's work: settings -> trials on one backend -> metrics_eval.json."""
    from omegaconf import OmegaConf

    settings = OmegaConf.to_container(cfg, resolve=True)
    spec = parse_spec(settings)
    backend = settings.get("backend")
    if backend not in BACKENDS:
        raise RobustnessConfigError(f"backend={backend}: choose one of {list(BACKENDS)}")
    if not settings.get("checkpoint"):
        raise FileNotFoundError("+checkpoint=PATH is required (a .pt written by "
                                "train_agent_trl.py)")
    checkpoint = Path(str(settings["checkpoint"]))
    if not checkpoint.is_file():
        raise FileNotFoundError(f"+checkpoint={checkpoint}: no such file")
    from gear_sonic.eval.evaluate import load_actor_checkpoint
    from gear_sonic.eval.locomotion import is_locomotion
    from gear_sonic.eval_agent_trl import load_train_config

    train_cfg = load_train_config(cfg, checkpoint)
    state = load_actor_checkpoint(checkpoint)
    tracking = not is_locomotion(train_cfg)
    if settings.get("motion_file") and tracking:
        train_cfg.manager_env.commands.motion.motion_file = str(settings["motion_file"])
    out_dir, name = _output_dir(settings, checkpoint, int(state.get("iteration", 0)), backend)
    path = out_dir / METRICS_FILE
    if path.exists() and not settings.get("overwrite"):
        raise FileExistsError(f"{path} already holds a robustness result; ++overwrite=true "
                              "replaces it")
    encoder = settings.get("encoder")
    if backend == "env":
        env, actor = build_env_and_actor(train_cfg, state, str(checkpoint), spec.trials,
                                         str(settings.get("device", "cpu")), spec)
        try:
            results = run_env(env, actor, spec, encoder=encoder, log=print)
        finally:
            env.close()
    else:
        deploy_dir = settings.get("deploy_dir") or _export_bundle(train_cfg, state, checkpoint,
                                                                  out_dir / "deploy")
        clips = deploy_clips(train_cfg.manager_env.commands.motion.motion_file) if tracking \
            else []
        results = run_deploy(deploy_dir, clips, spec, encoder=encoder, log=print)
    return write_result(path, results, {
        "iteration": int(state.get("iteration", 0)), "checkpoint": str(checkpoint),
        "backend": backend, "evaluation": {"name": name, "label": _label(state, name)},
        "robustness_config": {k: settings.get(k) for k in (
            "perturbations", "trials", "max_steps", "seed", "mass_body", "encoder",
            "motion_file", "velocity_command")},
    })


def _label(state: Mapping, name: str) -> str:
    from gear_sonic.eval.outputs import evaluation_label

    return evaluation_label(int(state.get("iteration", 0)), name)


def _output_dir(settings: Mapping, checkpoint: Path, iteration: int, backend: str):
    from omegaconf import OmegaConf

    from gear_sonic.eval.outputs import evaluation_dir, evaluation_name
    from gear_sonic.eval_agent_trl import find_train_config

    config_path = find_train_config(checkpoint)
    trained_on = OmegaConf.select(OmegaConf.load(config_path),
                                  "manager_env.commands.motion.motion_file")
    others = evaluation_name(None, settings.get("motion_file"), trained_on)
    name = "+".join(p for p in (f"robustness-{backend}", others) if p)
    if settings.get("output_dir"):
        return Path(str(settings["output_dir"])), name
    return evaluation_dir(config_path.parent, iteration, name), name


def write_result(path: Path, results: Sequence[LevelResult], info: Mapping) -> Path:
    import json

    from gear_sonic.utils.atomic_io import atomic_write_text

    payload = {**info, **metrics(results)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(payload, indent=2), path)
    print(f"robustness/score {payload['robustness/score']:.3f}")
    print(f"wrote {path}")
    return path


def deploy_clips(motion_file) -> list[Path]:
    """The .npz clips of a motion file or folder (what the deploy loop reads)."""
    from gear_sonic.eval.outputs import resolve_motion_path
    from gear_sonic.utils.motion_lib import list_motion_files

    files = [f for f in list_motion_files(resolve_motion_path(str(motion_file)))
             if f.suffix == ".npz"]
    if not files:
        raise RobustnessConfigError(f"motion_file={motion_file}: no .npz clip for the deploy "
                                    "backend; convert the set with data_process/"
                                    "convert_motions.py or use backend=env")
    return files


def build_env_and_actor(train_cfg, state: Mapping, where: str, num_envs: int,
                        device: str = "cpu", spec: RobustnessSpec | None = None):
    """The evaluation env (exact replay, or the fixed-command locomotion evaluation) with no
    randomisation and no observation corruption: the benchmark's perturbations are the only
    ones."""
    from omegaconf import OmegaConf

    from gear_sonic.eval import locomotion
    from gear_sonic.eval.evaluate import build_eval_env_and_actor
    from gear_sonic.eval.exact_replay import apply_exact_replay

    if locomotion.is_locomotion(train_cfg):
        cfg = train_cfg.copy()
        OmegaConf.set_struct(cfg, False)
        cfg.manager_env.events = {}
        steps = _trial_steps(None, spec or parse_spec({"perturbations": {"push": [0.0]}}))
        step_dt = float(cfg.manager_env.config.sim_dt) * int(cfg.manager_env.config.decimation)
        return locomotion.build_env_and_actor(cfg, dict(state), where, num_envs, device,
                                              duration_s=steps * step_dt)
    cfg = apply_exact_replay(train_cfg, events="none")  # evaluation's own pass keeps it so
    for group in cfg.manager_env.observations.values():
        group.enable_corruption = False
    return build_eval_env_and_actor(cfg, dict(state), where, num_envs, device)


def _export_bundle(train_cfg, state: Mapping, checkpoint: Path, out_dir: Path) -> Path:
    from gear_sonic.deploy.bundle import write_deploy_bundle

    env, actor = build_env_and_actor(train_cfg, state, str(checkpoint), 1)
    try:
        write_deploy_bundle(actor, env, out_dir)
    finally:
        env.close()
    return out_dir
