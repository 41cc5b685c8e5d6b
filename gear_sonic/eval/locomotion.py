"""Evaluate a velocity-tracking (locomotion) checkpoint over a fixed sweep of commands.

Every env holds one command of the sweep (repeated to fill the envs) for `duration_s`: no
resampling, no standing or heading envs, no pushes (train-only events), no curriculum, no
observation noise; startup randomisation (friction, payload) stays and is seeded. Per command:
return, velocity tracking error (planar m/s, yaw rad/s), the tracking reward terms, fall rate.
The result has the tracking evaluation's layout ("aggregate" plus one row per command in "clips",
with success and progress), so the checkpoint monitor and its report take it as they are.

    result = evaluate_locomotion(train_cfg, state, "run/last.pt", num_envs=16)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import mujoco
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from gear_sonic.eval.render import GhostRenderer, _numpy
from gear_sonic.trl.modules.recurrent_modules import reset_memory

COMMAND_NAME = "twist"
TRACKING_TERMS = ("track_lin_vel_xy_exp", "track_ang_vel_z_exp")
# (v_x m/s, v_y m/s, yaw rate rad/s): standing, forward/backward, sideways, turning, a curve.
DEFAULT_COMMANDS = (
    (0.0, 0.0, 0.0),
    (0.5, 0.0, 0.0),
    (1.0, 0.0, 0.0),
    (-0.5, 0.0, 0.0),
    (0.0, 0.5, 0.0),
    (0.0, 0.0, 0.5),
    (0.0, 0.0, -0.5),
    (0.5, 0.0, 0.5),
)
DEFAULT_DURATION_S = 10.0


def is_locomotion(train_cfg: DictConfig) -> bool:
    """A velocity-command run (go2_velocity*, go1_velocity) rather than motion tracking."""
    commands = OmegaConf.select(train_cfg, "manager_env.commands") or {}
    return "motion" not in commands and any(
        (entry or {}).get("type") == "velocity" for entry in commands.values()
    )


def parse_commands(value) -> list[tuple[float, float, float]]:
    """++eval_commands=[[vx,vy,wz],...] -> list of triples; one clear error otherwise."""
    if value is None:
        return [tuple(c) for c in DEFAULT_COMMANDS]
    raw = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    ok = (
        isinstance(raw, (list, tuple))
        and raw
        and all(isinstance(c, (list, tuple)) and len(c) == 3 for c in raw)
    )
    if not ok:
        raise ValueError(
            f"++eval_commands={raw!r}: expected a list of [v_x, v_y, yaw_rate] triples, "
            "e.g. ++eval_commands='[[0.5,0,0],[0,0,0.5]]'"
        )
    return [tuple(float(x) for x in c) for c in raw]


def run_eval_commands(override, train_cfg: DictConfig):
    """The sweep to play: `++eval_commands` if given, else the run's own `eval_commands` (a preset
    trained on a narrower command set names its sweep, e.g. go2_velocity_cpu), else the default."""
    return override if override is not None else train_cfg.get("eval_commands")


def command_name(command: Sequence[float]) -> str:
    vx, vy, wz = command
    return f"vx{vx:+.2f}_vy{vy:+.2f}_wz{wz:+.2f}"


def eval_env_config(train_cfg: DictConfig, duration_s: float) -> DictConfig:
    """A copy of the training config with the fixed-command evaluation settings."""
    cfg = copy.deepcopy(train_cfg)
    OmegaConf.set_struct(cfg, False)
    env = cfg.manager_env
    twist = env.commands[COMMAND_NAME]
    twist.rel_standing_envs = 0.0
    twist.rel_heading_envs = 0.0
    twist.resampling_time_range = [1.0e9, 1.0e9]
    env.curriculum = {}
    env.events = {k: v for k, v in (env.get("events") or {}).items() if not v.get("train_only")}
    for group in env.observations.values():
        group.enable_corruption = False
    # No time-out inside the window: a time-out would reset the env and resample its command.
    env.config.episode_length_s = float(duration_s) + 1.0
    return cfg


def build_env_and_actor(
    train_cfg: DictConfig,
    state: dict,
    where: str,
    num_envs: int,
    device: str = "cpu",
    duration_s: float = DEFAULT_DURATION_S,
    seed: int = 0,
):
    from gear_sonic.eval.evaluate import env_with_actor

    return env_with_actor(eval_env_config(train_cfg, duration_s), state, where, num_envs, device, seed)


def hold_commands(env, commands: torch.Tensor) -> dict:
    """Give env i the command commands[i] for good, restart the histories; -> observation."""
    term = env.env.command_manager.get_term(COMMAND_NAME)
    term.vel_command_b[:] = commands
    for flag in ("is_standing_env", "is_heading_env", "is_world_env", "is_forward_env"):
        if hasattr(term, flag):
            getattr(term, flag)[:] = False
    term.time_left[:] = 1.0e9
    all_ids = torch.arange(env.num_envs, device=env.device)
    env.env.action_manager.reset(all_ids)
    env.env.observation_manager.reset(all_ids)
    return env.env.observation_manager.compute(update_history=True)


def _sweep_tensor(commands, num_envs: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (num_envs, 3) commands (the sweep repeated) and which sweep entry each env holds."""
    index = torch.arange(num_envs, device=device) % len(commands)
    table = torch.tensor(commands, dtype=torch.float32, device=device)
    return table[index], index


@torch.no_grad()
def run_sweep(
    env,
    policy_fn: Callable[[dict], torch.Tensor],
    commands,
    duration_s: float,
    actor: torch.nn.Module | None = None,
) -> list:
    """Play every env for duration_s on its command; -> one row per command (means over envs).
    A recurrent `actor` starts from zero memory and forgets it when an env's episode ends."""
    if actor is not None:
        reset_memory(actor)
    cmds, index = _sweep_tensor(commands, env.num_envs, env.device)
    obs = hold_commands(env, cmds)
    robot = env.env.scene["robot"]
    rewards = env.env.reward_manager
    term_ids = [rewards.active_terms.index(t) for t in TRACKING_TERMS if t in rewards.active_terms]
    steps = max(1, round(duration_s / env.step_dt))
    n = env.num_envs
    alive = torch.ones(n, dtype=torch.bool, device=env.device)
    fell = torch.zeros(n, dtype=torch.bool, device=env.device)
    sums = {
        k: torch.zeros(n, device=env.device)
        for k in ("steps", "return", "lin_err", "yaw_err", "track")
    }
    for _ in range(steps):
        obs, reward, done, extras = env.step(policy_fn(obs))
        if actor is not None:
            reset_memory(actor, done.reshape(-1))
        live = alive.float()
        # Velocities after the step; an env reset inside the step is not alive any more.
        lin_err = (robot.data.root_link_lin_vel_b[:, :2] - cmds[:, :2]).norm(dim=-1)
        yaw_err = (robot.data.root_link_ang_vel_b[:, 2] - cmds[:, 2]).abs()
        ended = done.reshape(-1).bool()
        counted = live * (~ended).float()
        sums["return"] += live * reward.reshape(-1)
        sums["track"] += live * rewards._step_reward[:, term_ids].sum(-1) * env.step_dt
        sums["lin_err"] += counted * lin_err
        sums["yaw_err"] += counted * yaw_err
        sums["steps"] += counted
        fell |= alive & extras["terminated"].reshape(-1).bool()
        alive &= ~ended
    rows = []
    for i, command in enumerate(commands):
        mine = index == i
        count = sums["steps"][mine].clamp_min(1.0)
        row = {
            "clip": command_name(command),
            "command": list(command),
            "num_envs": int(mine.sum()),
            "fall_rate": float(fell[mine].float().mean()),
            "progress": float((sums["steps"][mine] / steps).mean()),
            "return": float(sums["return"][mine].mean()),
            "lin_vel_error": float((sums["lin_err"][mine] / count).mean()),
            "yaw_rate_error": float((sums["yaw_err"][mine] / count).mean()),
            "tracking_reward": float(sums["track"][mine].mean()),
        }
        row["success"] = row["fall_rate"] == 0.0
        rows.append(row)
    return rows


def aggregate_rows(rows: list[dict]) -> dict:
    mean = lambda key: float(np.mean([r[key] for r in rows]))
    return {
        "num_clips": len(rows),
        "num_commands": len(rows),
        "success_rate": mean("success"),
        "progress_rate": mean("progress"),
        "fall_rate": mean("fall_rate"),
        "return_mean": mean("return"),
        "lin_vel_error": mean("lin_vel_error"),
        "yaw_rate_error": mean("yaw_rate_error"),
        "tracking_reward": mean("tracking_reward"),
    }


def evaluate_locomotion(
    train_cfg: DictConfig,
    state: dict,
    where: str,
    num_envs: int,
    device: str = "cpu",
    commands=None,
    duration_s: float | None = None,
    seed: int = 0,
) -> dict:
    """-> {"task": "locomotion", "aggregate": {...}, "clips": [one row per command], ...}."""
    commands = parse_commands(commands)
    duration_s = float(duration_s or DEFAULT_DURATION_S)
    num_envs = max(int(num_envs), len(commands))
    env, actor = build_env_and_actor(train_cfg, state, where, num_envs, device, duration_s, seed)
    try:
        rows = run_sweep(env, actor.act_inference, commands, duration_s, actor=actor)
        step_dt = float(env.step_dt)
    finally:
        env.close()
    return {
        "task": "locomotion",
        "iteration": int(state.get("iteration", 0)),
        "step_dt": step_dt,
        "duration_s": duration_s,
        "seed": seed,
        "units": {
            "lin_vel_error": "m/s",
            "yaw_rate_error": "rad/s",
            "return": "sum of rewards",
            "tracking_reward": "sum over the window",
        },
        "aggregate": aggregate_rows(rows),
        "clips": rows,
    }


def worst_commands(metrics: dict, count: int) -> list[list[float]]:
    """Commands of the rows that fell most, then tracked worst."""
    rows = sorted(metrics["clips"], key=lambda r: (-r["fall_rate"], -r["lin_vel_error"]))
    return [r["command"] for r in rows[: max(0, count)]]


def render_commands(
    train_cfg: DictConfig,
    state: dict,
    where: str,
    commands,
    out_dir: Path,
    duration_s: float | None = None,
    width: int = 640,
    height: int = 480,
    device: str = "cpu",
) -> list[Path]:
    """One mp4 per command (a 1-env run each, the camera following the base)."""
    import imageio.v2 as imageio

    from gear_sonic.utils.atomic_io import atomic_write_text
    from gear_sonic.utils.safe_names import path_inside

    duration_s = float(duration_s or DEFAULT_DURATION_S)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env, actor = build_env_and_actor(train_cfg, state, where, 1, device, duration_s)
    renderer = RobotRenderer(env, width=width, height=height)
    paths, index = [], {}
    try:
        for command in commands:
            name = command_name(command)
            path = path_inside(out_dir, name, ".mp4")
            env.reset()
            frames = [renderer.frame()]
            run_sweep(
                env, _recording(actor.act_inference, renderer, frames), [command], duration_s, actor
            )
            with imageio.get_writer(path, fps=1.0 / env.step_dt, macro_block_size=1) as writer:
                for frame in frames:
                    writer.append_data(frame)
            paths.append(path)
            index[name] = path.name
    finally:
        renderer.close()
        env.close()
    atomic_write_text(json.dumps(index, indent=2), out_dir / "clips.json")
    return paths


def _recording(policy_fn, renderer, frames: list):
    def act(obs):
        frames.append(renderer.frame())
        return policy_fn(obs)

    return act


class RobotRenderer(GhostRenderer):
    """GhostRenderer's camera and settings on env 0, without the reference ghost."""

    def __init__(self, env, width: int = 640, height: int = 480):
        body = "base" if _has_body(env, "base") else "pelvis"
        super().__init__(env, width=width, height=height, anchor_body=body)

    def frame(self) -> np.ndarray:
        sim_data = self.env.env.sim.data
        self.data.qpos[:] = _numpy(sim_data.qpos[0])
        self.data.qvel[:] = _numpy(sim_data.qvel[0])
        mujoco.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera=self.camera, scene_option=self.option)
        for flag, value in self.flags.items():
            self.renderer.scene.flags[flag] = value
        return self.renderer.render()


def _has_body(env, name: str) -> bool:
    model = env.env.sim.mj_model
    return any(
        mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, c) >= 0 for c in (name, f"robot/{name}")
    )


# ---------------------------------------------------------------- eval_agent_trl.py entry
def run_locomotion_eval(
    cfg: DictConfig,
    train_cfg: DictConfig,
    checkpoint: Path,
    state: dict,
    output_dir: Path,
    label: str,
) -> dict:
    """The default evaluation: -> the result dict (the caller writes metrics_eval.json)."""
    result = evaluate_locomotion(
        train_cfg,
        state,
        str(checkpoint),
        num_envs=int(cfg.num_envs),
        device=str(cfg.device),
        commands=run_eval_commands(cfg.get("eval_commands"), train_cfg),
        duration_s=cfg.get("eval_duration_s"),
        seed=int(cfg.get("seed", 0) or 0),
    )
    result["checkpoint"] = str(checkpoint)
    result["evaluation"] = {"name": "", "label": label}
    return result


def render_worst(cfg: DictConfig, train_cfg: DictConfig, checkpoint: Path, state: dict) -> Path:
    """++metrics_file=...: videos of the worst ++num_render_videos commands of that file."""
    metrics_path = Path(str(cfg.metrics_file))
    if not metrics_path.is_file():
        raise FileNotFoundError(f"++metrics_file={metrics_path}: no such file")
    metrics = json.loads(metrics_path.read_text())
    if metrics.get("task") != "locomotion":
        raise ValueError(f"++metrics_file={metrics_path}: not a locomotion evaluation")
    out_dir = (Path(cfg.output_dir) if cfg.get("output_dir") else metrics_path.parent) / "videos"
    commands = worst_commands(metrics, int(cfg.get("num_render_videos", 3)))
    paths = render_commands(
        train_cfg,
        state,
        str(checkpoint),
        commands,
        out_dir,
        duration_s=metrics.get("duration_s"),
        width=int(cfg.render_width),
        height=int(cfg.render_height),
        device=str(cfg.device),
    )
    print(f"wrote {len(paths)} videos to {out_dir}")
    return out_dir


def export_policy(cfg: DictConfig, train_cfg: DictConfig, checkpoint: Path, state: dict) -> Path:
    """+export_onnx_only=true: the ONNX policy, metadata.json and deploy/ (onnx_export.py)."""
    from gear_sonic.eval.onnx_export import export_env_actor

    out_dir = Path(cfg.output_dir) if cfg.get("output_dir") else checkpoint.parent / "onnx"
    env, actor = build_env_and_actor(train_cfg, state, str(checkpoint), 1, str(cfg.device))
    try:
        paths = export_env_actor(actor, env, out_dir)
    except TypeError as err:  # an exporter that does not know this actor yet
        raise ValueError(f"+export_onnx_only: {checkpoint}: {err}") from None
    finally:
        env.close()
    print(f"wrote {len(paths)} files to {out_dir}")
    return out_dir


def print_table(result: dict, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    agg = result["aggregate"]
    label = result.get("evaluation", {}).get("label") or f"iteration {result['iteration']}"
    table = Table(
        title=f"locomotion evaluation: {agg['num_commands']} commands, "
        f"{result['duration_s']:.0f} s each, {label}",
        caption="errors: planar velocity m/s, yaw rate rad/s",
    )
    columns = ("fall_rate", "return", "lin_vel_error", "yaw_rate_error", "tracking_reward")
    table.add_column("command (vx, vy, wz)", no_wrap=True)
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for row in result["clips"]:
        table.add_row(row["clip"], *(f"{row[c]:.3f}" for c in columns))
    table.add_row(
        "[b]mean[/b]",
        f"{agg['fall_rate']:.3f}",
        f"{agg['return_mean']:.3f}",
        f"{agg['lin_vel_error']:.3f}",
        f"{agg['yaw_rate_error']:.3f}",
        f"{agg['tracking_reward']:.3f}",
    )
    (console or Console(width=120)).print(table)
