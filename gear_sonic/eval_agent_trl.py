"""Evaluate a checkpoint: `python gear_sonic/eval_agent_trl.py +checkpoint=PATH [overrides]`.

Reads config.yaml beside the checkpoint (or one folder up), plays every clip of the motion set
once from frame 0 with deterministic actions and writes metrics_eval.json (aggregate + per clip)
to `output_dir` (default `<experiment dir>/eval/step_<iteration>`).

    ++num_envs=N            envs per round (clips beyond N run in further rounds)
    ++motion_file=PATH      evaluate on another dataset
    ++use_encoder=teleop    force one encoder path (g1 | teleop | smpl)
    ++metrics_file=PATH     render the worst ++num_render_videos clips of that file into <output_dir>/videos
    +export_onnx_only=true  write the ONNX policy instead of evaluating
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # running the file directly from a checkout
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering for ++metrics_file videos


class NotAvailableError(RuntimeError):
    """A feature whose module another change has not landed yet."""


def find_train_config(checkpoint: Path) -> Path:
    candidates = [checkpoint.parent / "config.yaml", checkpoint.parent.parent / "config.yaml"]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"no config.yaml for {checkpoint}: looked for {candidates[0]} and {candidates[1]}"
    )


def load_train_config(cfg: DictConfig, checkpoint: Path) -> DictConfig:
    train_cfg = OmegaConf.load(find_train_config(checkpoint))
    OmegaConf.set_struct(train_cfg, False)
    if cfg.get("motion_file"):
        train_cfg.manager_env.commands.motion.motion_file = str(cfg.motion_file)
    train_cfg.device = str(cfg.device)
    return train_cfg


def default_output_dir(checkpoint: Path, iteration: int) -> Path:
    exp_dir = find_train_config(checkpoint).parent
    return exp_dir / "eval" / f"step_{iteration:06d}"


def _lazy(module: str, name: str):
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as err:
        if err.name and module.startswith(err.name):
            raise NotAvailableError(f"{module}.{name} is not available yet") from None
        raise


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN (no successful clip) is not valid JSON
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    agg = result["aggregate"]
    table = Table(title=f"evaluation: {agg['num_clips']} clips, iteration {result['iteration']}")
    columns = ("clip", "success", "progress", "mpjpe_g", "mpjpe_l", "mpjpe_pa", "vel_dist", "accel_dist")
    for column in columns:
        table.add_column(column)
    fmt = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"  # noqa: E731
    for row in result["clips"]:
        table.add_row(row["clip"], "yes" if row["success"] else "no", f"{100 * row['progress']:.0f} %",
                      *(fmt(row.get(c)) for c in columns[3:]))
    table.add_row("[b]all[/b]", f"{100 * agg['success_rate']:.0f} %", f"{100 * agg['progress_rate']:.0f} %",
                  *(fmt(agg.get(f"{c}_all")) for c in columns[3:]))
    table.add_row("[b]successful[/b]", "", "", *(fmt(agg.get(f"{c}_succ")) for c in columns[3:]))
    Console().print(table)


def run_eval(cfg: DictConfig) -> Path:
    from gear_sonic.eval.evaluate import evaluate_checkpoint, load_actor_state
    from gear_sonic.utils.atomic_io import atomic_write_text

    if not cfg.get("checkpoint"):
        raise FileNotFoundError("+checkpoint=PATH is required (a .pt written by train_agent_trl.py)")
    checkpoint = Path(str(cfg.checkpoint))
    if not checkpoint.is_file():
        raise FileNotFoundError(f"+checkpoint={checkpoint}: no such file")
    train_cfg = load_train_config(cfg, checkpoint)
    if cfg.get("export_onnx_only") or cfg.get("metrics_file"):
        return run_extra(cfg, train_cfg, checkpoint)
    iteration = int(load_actor_state(checkpoint).get("iteration", 0))
    out_dir = Path(cfg.output_dir) if cfg.get("output_dir") else default_output_dir(checkpoint, iteration)
    # The env builders print manager tables; the table below is this command's only output.
    with contextlib.redirect_stdout(io.StringIO()):
        result = evaluate_checkpoint(
            train_cfg, checkpoint, num_envs=int(cfg.num_envs), use_encoder=cfg.get("use_encoder"),
            device=str(cfg.device), run_once=bool(cfg.get("run_once", False)),
        )
    result["checkpoint"] = str(checkpoint)
    result["motion_file"] = str(train_cfg.manager_env.commands.motion.motion_file)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics_eval.json"
    atomic_write_text(json.dumps(_json_safe(result), indent=2), path)
    print_table(result)
    print(f"wrote {path}")
    return path


def _eval_env_and_actor(cfg: DictConfig, train_cfg: DictConfig, checkpoint: Path):
    from gear_sonic.envs import create_manager_env
    from gear_sonic.eval.evaluate import eval_config, load_actor_state
    from gear_sonic.checkpoint import load_module_state
    from gear_sonic.trl.builders import build_policy_and_value

    state = load_actor_state(checkpoint)
    env_cfg = eval_config(train_cfg, 1)
    with contextlib.redirect_stdout(io.StringIO()):
        env = create_manager_env(env_cfg, device=str(cfg.device), num_envs=1, evaluation=True)
    try:
        actor, _ = build_policy_and_value(env_cfg, env.observation_shapes, env.num_actions)
        load_module_state(actor, state["actor"], f"{checkpoint}: actor")
    except Exception:
        env.close()
        raise
    return env, actor.to(env.device).eval()


def worst_clips(metrics: dict, count: int) -> list[str]:
    """Clip keys, worst first: least progress, then largest global error."""
    rows = sorted(metrics["clips"], key=lambda r: (r["progress"], -(r.get("mpjpe_g") or 0.0)))
    return [r["clip"] for r in rows[: max(0, count)]]


def run_extra(cfg: DictConfig, train_cfg: DictConfig, checkpoint: Path) -> Path:
    """ONNX export, or videos of the worst clips of an earlier metrics_eval.json."""
    if cfg.get("export_onnx_only"):
        export_onnx = _lazy("gear_sonic.eval.onnx_export", "export_onnx")
        metadata_from_env = _lazy("gear_sonic.eval.onnx_export", "metadata_from_env")
        out_dir = Path(cfg.output_dir) if cfg.get("output_dir") else checkpoint.parent / "onnx"
        env, actor = _eval_env_and_actor(cfg, train_cfg, checkpoint)
        try:
            paths = export_onnx(actor, env.observation_shapes, out_dir, metadata=metadata_from_env(env))
        finally:
            env.close()
        print(f"wrote {len(paths)} files to {out_dir}")
        return out_dir
    render_clips = _lazy("gear_sonic.eval.render", "render_clips")
    metrics_path = Path(str(cfg.metrics_file))
    if not metrics_path.is_file():
        raise FileNotFoundError(f"++metrics_file={metrics_path}: no such file")
    metrics = json.loads(metrics_path.read_text())
    if metrics.get("motion_file") and not cfg.get("motion_file"):
        train_cfg.manager_env.commands.motion.motion_file = metrics["motion_file"]
    out_dir = (Path(cfg.output_dir) if cfg.get("output_dir") else metrics_path.parent) / "videos"
    env, actor = _eval_env_and_actor(cfg, train_cfg, checkpoint)
    try:
        motion = env.command().motion
        keys = [motion.keys[i] for i in motion.resident_ids.tolist()]
        wanted = worst_clips(metrics, int(cfg.get("num_render_videos", 3)))
        unknown = [k for k in wanted if k not in keys]
        if unknown:
            raise ValueError(f"++metrics_file={metrics_path}: clip {unknown[0]!r} is not in the motion set")
        paths = render_clips(env, actor.act_inference, [keys.index(k) for k in wanted], out_dir)
    finally:
        env.close()
    print(f"wrote {len(paths)} videos to {out_dir}")
    return out_dir


@hydra.main(config_path="../config", config_name="base_eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        torch.set_grad_enabled(False)
        run_eval(cfg)
    except (FileNotFoundError, ValueError, KeyError, NotAvailableError) as err:
        # Bad input: one clear line, no traceback wall.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
