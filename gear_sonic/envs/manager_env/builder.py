"""`manager_env` YAML -> mjlab `ManagerBasedRlEnvCfg` -> `ManagerBasedRlEnv` -> wrapper."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import torch
import warp
from mjlab.envs import ManagerBasedRlEnv, ManagerBasedRlEnvCfg
from mjlab.envs.mdp.actions import JointPositionActionCfg
from mjlab.managers.curriculum_manager import CurriculumTermCfg
from mjlab.managers.event_manager import EventTermCfg
from mjlab.managers.metrics_manager import MetricsTermCfg
from mjlab.managers.observation_manager import ObservationGroupCfg, ObservationTermCfg
from mjlab.managers.reward_manager import RewardTermCfg
from mjlab.managers.termination_manager import TerminationTermCfg
from mjlab.scene import SceneCfg
from mjlab.sim import MujocoCfg, SimulationCfg
from mjlab.terrains import TerrainEntityCfg
from mjlab.viewer import ViewerConfig
from omegaconf import DictConfig, OmegaConf

from gear_sonic.envs.manager_env.mdp.actions import ReferenceJointPositionActionCfg
from gear_sonic.envs.manager_env.mdp.commands import TrackingCommandCfg
from gear_sonic.envs.manager_env.mdp.locomotion.commands import velocity_command_cfg
from gear_sonic.envs.manager_env.robots import RobotSpec, get_robot
from gear_sonic.envs.manager_env.terms import (
    EnvConfigError,
    check_params,
    convert_params,
    noise_cfg,
    resolve_function,
    split_entry,
    to_tuples,
)
from gear_sonic.envs.wrapper import ManagerEnvWrapper
from gear_sonic.sim import simulation_backend

# Warp logs one line per (cached) kernel module at INFO, which Hydra's logging shows; keep it to
# warnings unless MJLAB_WARP_QUIET=0 (see gear_sonic/__init__.py).
if os.environ.get("MJLAB_WARP_QUIET", "1").lower() in ("1", "true", "yes"):
    warp.config.log_level = warp.LOG_WARNING
logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[3]
ACTION_TYPES = {
    "joint_position": JointPositionActionCfg,  # default pose + scale * action (SONIC)
    "reference_joint_position": ReferenceJointPositionActionCfg,  # reference pose + scale * action
}
_GROUP_KEYS = {"terms", "concatenate", "enable_corruption", "history_length"}
_OBS_TERM_KEYS = {"func", "params", "noise", "clip", "scale", "history_length"}
_SECTIONS = ("config", "actions", "commands", "observations", "rewards", "terminations", "events",
             "curriculum", "metrics")  # fmt: skip


def resolve_device(device: str | None) -> str:
    if device in (None, "auto"):
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    return str(device)


def create_manager_env(
    cfg: DictConfig,
    device: str | None = None,
    num_envs: int | None = None,
    seed: int | None = None,
    evaluation: bool = False,
    render_mode: str | None = None,
) -> ManagerEnvWrapper:
    """Build the wrapped env from a composed config (the top-level cfg with `manager_env`)."""
    if "manager_env" not in cfg:
        raise EnvConfigError("config has no `manager_env` section: compose an experiment preset (+exp=...)")
    env_cfg = build_env_cfg(
        cfg.manager_env,
        num_envs=int(num_envs if num_envs is not None else cfg.num_envs),
        seed=int(seed if seed is not None else cfg.get("seed", 0)),
        evaluation=evaluation,
    )
    logger.info(
        "building the env (%d envs); the first run on a machine compiles warp kernels (about a minute on CPU)",
        env_cfg.scene.num_envs,
    )
    device = resolve_device(device or cfg.get("device"))
    sim_conf = cfg.manager_env.config.get("sim") or {}
    with simulation_backend(sim_conf.get("backend"), device, sim_conf.get("num_threads")):
        env = ManagerBasedRlEnv(env_cfg, device=device, render_mode=render_mode)
    return ManagerEnvWrapper(env, action_clip=cfg.manager_env.config.action_clip_value)


def build_env_cfg(
    manager_env: DictConfig, num_envs: int, seed: int = 0, evaluation: bool = False
) -> ManagerBasedRlEnvCfg:
    raw = OmegaConf.to_container(manager_env, resolve=True)
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        raise EnvConfigError(f"manager_env: unknown sections {sorted(unknown)}; allowed: {list(_SECTIONS)}")
    conf = raw["config"]
    robot = get_robot(conf["robot"])
    return ManagerBasedRlEnvCfg(
        decimation=int(conf["decimation"]),
        scene=SceneCfg(
            num_envs=num_envs,
            env_spacing=float(conf["env_spacing"]),
            terrain=TerrainEntityCfg(terrain_type=conf["terrain_type"]),
            entities={"robot": robot.entity_cfg()},
            sensors=_sensors(robot, conf.get("sensors")),
        ),
        sim=SimulationCfg(
            njmax=int(conf["njmax"]),
            # null: MJWarp sizes the contact buffer itself
            nconmax=None if conf["nconmax"] is None else int(conf["nconmax"]),
            mujoco=MujocoCfg(
                timestep=float(conf["sim_dt"]),
                iterations=int(conf["solver_iterations"]),
                ls_iterations=int(conf["solver_ls_iterations"]),
                # Friction cone and impedance ratio: MuJoCo's defaults unless a task sets them.
                cone=str(conf.get("cone", "pyramidal")),
                impratio=float(conf.get("impratio", 1.0)),
            ),
        ),
        episode_length_s=float(conf["episode_length_s"]),
        seed=seed,
        actions=_actions(raw.get("actions") or {}, robot),
        commands=_commands(raw.get("commands") or {}, robot),
        observations=_observations(raw.get("observations") or {}),
        rewards=_rewards(raw.get("rewards") or {}),
        terminations=_terminations(raw.get("terminations") or {}),
        events=_events(raw.get("events") or {}, evaluation),
        metrics=_metrics(raw.get("metrics") or {}),
        curriculum=_curriculum(raw.get("curriculum") or {}),
        viewer=ViewerConfig(
            origin_type=ViewerConfig.OriginType.ASSET_BODY,
            entity_name="robot",
            body_name=robot.anchor_body,
            distance=3.0,
            elevation=-10.0,
            azimuth=120.0,
        ),
    )


def _sensors(robot: RobotSpec, wanted: list[str] | None) -> tuple:
    """The robot's sensors the task names in `config.sensors` (all of them when unset): each
    contact sensor costs physics time every substep, so a task builds only those it reads."""
    available = {sensor.name: sensor for sensor in robot.contact_sensors()}
    if wanted is None:
        return tuple(available.values())
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise EnvConfigError(
            f"manager_env.config.sensors: {unknown} are not sensors of robot {robot.name!r}; "
            f"it has {sorted(available)} (robots/{robot.name}.py)"
        )
    return tuple(available[name] for name in wanted)


def _actions(section: dict, robot: RobotSpec) -> dict:
    out = {}
    for name, entry in section.items():
        key = f"manager_env.actions.{name}"
        entry = dict(entry)
        kind = entry.pop("type", None)
        if kind not in ACTION_TYPES:
            raise EnvConfigError(f"{key}.type: unknown action type {kind!r}; supported: {sorted(ACTION_TYPES)}")
        if entry.get("scale") == "robot":
            entry["scale"] = dict(robot.action_scale)
        out[name] = _dataclass(ACTION_TYPES[kind], {"entity_name": "robot", "actuator_names": (".*",), **entry}, key)
    return out


def _commands(section: dict, robot: RobotSpec) -> dict:
    out = {}
    for name, entry in section.items():
        key = f"manager_env.commands.{name}"
        entry = dict(entry)
        kind = entry.pop("type", None)
        if kind == "velocity":  # locomotion: mjlab's UniformVelocityCommandCfg
            out[name] = velocity_command_cfg(entry, key)
            continue
        if kind != "tracking":
            raise EnvConfigError(f"{key}.type: unknown command type {kind!r}; supported: tracking, velocity")
        if entry.get("body_names") == "robot":
            entry["body_names"] = robot.tracked_bodies
        entry.setdefault("vr_body_names", robot.vr_bodies)
        entry.setdefault("vr_body_offsets", robot.vr_offsets)
        entry.setdefault("wrist_joint_names", robot.wrist_joints)
        entry["motion_file"] = str(_find_motion_file(entry.get("motion_file"), f"{key}.motion_file"))
        out[name] = _dataclass(TrackingCommandCfg, to_tuples(entry), key)
    return out


def _find_motion_file(path: Any, key: str) -> Path:
    if not path:
        raise EnvConfigError(f"{key} is empty: set it to a motion file or folder (e.g. data/motions)")
    candidates = [Path(path), REPO_ROOT / path]
    for candidate in candidates:
        if candidate.exists():
            return candidate.resolve()
    raise EnvConfigError(f"{key}: {path!r} does not exist (looked in the working directory and {REPO_ROOT})")


def _dataclass(cls, values: dict, key: str):
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - fields
    if unknown:
        raise EnvConfigError(f"{key}: unknown keys {sorted(unknown)} for {cls.__name__}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise EnvConfigError(f"{key}: {err}") from None


def _observations(section: dict) -> dict[str, ObservationGroupCfg]:
    groups = {}
    for group_name, group in section.items():
        key = f"manager_env.observations.{group_name}"
        unknown = set(group) - _GROUP_KEYS
        if unknown:
            raise EnvConfigError(f"{key}: unknown keys {sorted(unknown)}; allowed: {sorted(_GROUP_KEYS)}")
        terms = {}
        for term_name, entry in (group.get("terms") or {}).items():
            term_key = f"{key}.terms.{term_name}"
            entry = split_entry(entry, _OBS_TERM_KEYS, term_key)
            func = resolve_function(entry["func"], "observations", term_key)
            params = entry.get("params") or {}
            check_params(func, params, term_key)
            terms[term_name] = ObservationTermCfg(
                func=func,
                params=convert_params(params, f"{term_key}.params"),
                noise=noise_cfg(entry.get("noise"), f"{term_key}.noise"),
                clip=to_tuples(entry.get("clip")),
                scale=entry.get("scale"),
                history_length=int(entry.get("history_length") or 0),
            )
        groups[group_name] = ObservationGroupCfg(
            terms=terms,
            concatenate_terms=bool(group.get("concatenate", True)),
            enable_corruption=bool(group.get("enable_corruption", False)),
            history_length=group.get("history_length"),
        )
    return groups


def _function_terms(section: dict, kind: str, allowed: set[str]) -> dict[str, tuple[dict, Any, dict]]:
    """Shared validation of func/params entries: name -> (entry, func, converted params)."""
    out = {}
    for name, entry in section.items():
        key = f"manager_env.{kind}.{name}"
        entry = split_entry(entry, allowed, key)
        func = resolve_function(entry["func"], kind, key)
        params = entry.get("params") or {}
        check_params(func, params, key)
        out[name] = (entry, func, convert_params(params, f"{key}.params"))
    return out


def _rewards(section: dict) -> dict[str, RewardTermCfg]:
    terms = _function_terms(section, "rewards", {"func", "params", "weight"})
    for name, (entry, _, _) in terms.items():
        if not isinstance(entry.get("weight"), (int, float)) or isinstance(entry.get("weight"), bool):
            raise EnvConfigError(f"manager_env.rewards.{name}.weight must be a number, got {entry.get('weight')!r}")
    return {
        name: RewardTermCfg(func=func, weight=float(entry["weight"]), params=params)
        for name, (entry, func, params) in terms.items()
    }


def _terminations(section: dict) -> dict[str, TerminationTermCfg]:
    terms = _function_terms(section, "terminations", {"func", "params", "time_out"})
    return {
        name: TerminationTermCfg(func=func, params=params, time_out=bool(entry.get("time_out", False)))
        for name, (entry, func, params) in terms.items()
    }


def _events(section: dict, evaluation: bool) -> dict[str, EventTermCfg]:
    allowed = {"func", "params", "mode", "interval_range_s", "train_only"}
    terms = _function_terms(section, "events", allowed)
    out = {}
    for name, (entry, func, params) in terms.items():
        if evaluation and entry.get("train_only", False):
            continue
        if entry.get("mode") not in ("startup", "reset", "interval", "step"):
            raise EnvConfigError(
                f"manager_env.events.{name}.mode must be startup, reset, interval or step, got {entry.get('mode')!r}"
            )
        out[name] = EventTermCfg(
            func=func, mode=entry["mode"], params=params, interval_range_s=to_tuples(entry.get("interval_range_s"))
        )
    return out


def _metrics(section: dict) -> dict[str, MetricsTermCfg]:
    terms = _function_terms(section, "metrics", {"func", "params"})
    return {name: MetricsTermCfg(func=func, params=params) for name, (_, func, params) in terms.items()}


def _curriculum(section: dict) -> dict[str, CurriculumTermCfg]:
    terms = _function_terms(section, "curriculum", {"func", "params"})
    return {name: CurriculumTermCfg(func=func, params=params) for name, (_, func, params) in terms.items()}
