"""Evaluate a checkpoint: `python gear_sonic/eval_agent_trl.py +checkpoint=PATH [overrides]`.

Reads config.yaml beside the checkpoint (or one folder up), plays every clip of the motion set
once from frame 0 with deterministic actions (exact-replay settings:
config/eval_overrides/exact_replay.yaml) and writes metrics_eval.json (aggregate + per clip).
Outputs are keyed by what was evaluated (gear_sonic/eval/outputs.py): the default evaluation goes
to `<experiment dir>/eval/step_<iteration>/`, others beside it (`.../enc-teleop/`,
`.../motions-<name>-<hash8>/`, `.../run_once/`). An existing result is never replaced unless
`++overwrite=true`.

    ++num_envs=N            envs per round (clips beyond N run in further rounds)
    ++motion_file=PATH      evaluate on another dataset
    ++use_encoder=teleop    force one encoder path (g1 | teleop | smpl)
    ++metrics_file=PATH     render the worst ++num_render_videos clips of that file
                            into <output_dir>/videos (640x480: ++render_width, ++render_height)
    ++eval_commands=[[vx,vy,wz],...]  locomotion runs: the command sweep (default: the run's own
                            eval_commands, else 8 commands of gear_sonic/eval/locomotion.py);
                            ++eval_duration_s=S per command
    +export_onnx_only=true  write the ONNX policy instead of evaluating, and a deploy/
                            folder that gear_sonic/deploy/run_policy.py runs as is
    ++overwrite=true        replace an existing metrics_eval.json
"""

from __future__ import annotations

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

METRICS_FILE = "metrics_eval.json"


class ResultExistsError(FileExistsError):
    """The evaluation's metrics_eval.json is already there and ++overwrite is not set."""


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


def output_dir_for(cfg: DictConfig, checkpoint: Path, iteration: int) -> tuple[Path, str]:
    """-> (output folder, evaluation name: "" for the default evaluation)."""
    from gear_sonic.eval.outputs import evaluation_dir, evaluation_name

    config_path = find_train_config(checkpoint)
    trained_on = OmegaConf.select(OmegaConf.load(config_path),
                                  "manager_env.commands.motion.motion_file")
    sweep = {key: cfg[key] for key in ("eval_commands", "eval_duration_s")
             if cfg.get(key) is not None}  # a sweep other than the run's own: its own folder
    sweep = OmegaConf.to_container(OmegaConf.create(sweep))
    name = evaluation_name(cfg.get("use_encoder"), cfg.get("motion_file"), trained_on,
                           bool(cfg.get("run_once", False)), sweep)
    if cfg.get("output_dir"):
        return Path(str(cfg.output_dir)), name
    return evaluation_dir(config_path.parent, iteration, name), name


def claim_result(cfg: DictConfig, checkpoint: Path, iteration: int) -> tuple[Path, Path, str, str]:
    """-> (output folder, its metrics_eval.json, evaluation name, label); an existing result
    stops the run unless ++overwrite=true."""
    from gear_sonic.eval.outputs import evaluation_label

    out_dir, name = output_dir_for(cfg, checkpoint, iteration)
    path = out_dir / METRICS_FILE
    label = evaluation_label(iteration, name)
    if path.exists() and not cfg.get("overwrite", False):
        raise ResultExistsError(f"{path} already holds an evaluation ({label}); "
                                "++overwrite=true replaces it")
    return out_dir, path, name, label


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN (no successful clip) is not valid JSON
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def print_table(result: dict, console=None) -> None:
    """Per-clip rows, then all / successful clips; whole clip names, however narrow the terminal."""
    from rich.console import Console
    from rich.markup import escape
    from rich.measure import Measurement
    from rich.table import Table

    agg = result["aggregate"]
    label = result.get("evaluation", {}).get("label") or f"iteration {result['iteration']}"
    hz = 1.0 / float(result.get("step_dt", 0.02))
    table = Table(title=f"evaluation: {agg['num_clips']} clips, {label}",
                  caption=f"mm; vel / accel: mm per frame / frame^2 at {hz:.0f} Hz")
    metrics = ("mpjpe_g", "mpjpe_l", "mpjpe_pa", "vel_dist", "accel_dist")
    names = [escape(str(row["clip"])) for row in result["clips"]] + ["successful"]
    table.add_column("clip", no_wrap=True, min_width=max(len(n) for n in names))
    for column in ("success", "progress", *metrics):
        table.add_column(column, justify="right", no_wrap=True)

    def fmt(v):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"

    for name, row in zip(names, result["clips"]):
        table.add_row(name, "yes" if row["success"] else "no", f"{100 * row['progress']:.0f} %",
                      *(fmt(row.get(c)) for c in metrics))
    table.add_row("[b]all[/b]", f"{100 * agg['success_rate']:.0f} %",
                  f"{100 * agg['progress_rate']:.0f} %",
                  *(fmt(agg.get(f"{c}_all")) for c in metrics))
    table.add_row("[b]successful[/b]", "", "", *(fmt(agg.get(f"{c}_succ")) for c in metrics))
    console = console or Console()
    # A table wider than the console would squeeze the clip names: widen the console instead.
    needed = Measurement.get(console, console.options.update_width(100_000), table).maximum
    console.width = max(console.width, needed)
    console.print(table)


def run_eval(cfg: DictConfig) -> Path:
    from gear_sonic.eval.evaluate import evaluate, load_actor_checkpoint
    from gear_sonic.utils.atomic_io import atomic_write_text

    if not cfg.get("checkpoint"):
        raise FileNotFoundError(
            "+checkpoint=PATH is required (a .pt written by train_agent_trl.py)")
    checkpoint = Path(str(cfg.checkpoint))
    if not checkpoint.is_file():
        raise FileNotFoundError(f"+checkpoint={checkpoint}: no such file")
    train_cfg = load_train_config(cfg, checkpoint)
    state = load_actor_checkpoint(checkpoint)  # the only load of this checkpoint
    from gear_sonic.eval.locomotion import is_locomotion

    if is_locomotion(train_cfg):
        return run_locomotion(cfg, train_cfg, checkpoint, state)
    if cfg.get("export_onnx_only") and "motion" not in (train_cfg.manager_env.commands or {}):
        return export_other_task(cfg, train_cfg, checkpoint, state)  # e.g. go2_balance
    if cfg.get("export_onnx_only") or cfg.get("metrics_file"):
        return run_extra(cfg, train_cfg, checkpoint, state)
    _, path, name, label = claim_result(cfg, checkpoint, int(state.get("iteration", 0)))
    result = evaluate(
        train_cfg, state, str(checkpoint), num_envs=int(cfg.num_envs),
        use_encoder=cfg.get("use_encoder"), device=str(cfg.device),
        run_once=bool(cfg.get("run_once", False)),
    )
    result["checkpoint"] = str(checkpoint)
    result["motion_file"] = str(train_cfg.manager_env.commands.motion.motion_file)
    result["evaluation"] = {"name": name, "label": label}
    atomic_write_text(json.dumps(_json_safe(result), indent=2), path)
    print_table(result)
    print(f"wrote {path}")
    return path


def run_locomotion(cfg: DictConfig, train_cfg: DictConfig, checkpoint: Path, state: dict) -> Path:
    """A velocity-tracking run: a fixed sweep of commands (gear_sonic/eval/locomotion.py)."""
    from gear_sonic.eval import locomotion
    from gear_sonic.utils.atomic_io import atomic_write_text

    if cfg.get("export_onnx_only"):
        return locomotion.export_policy(cfg, train_cfg, checkpoint, state)
    if cfg.get("metrics_file"):
        return locomotion.render_worst(cfg, train_cfg, checkpoint, state)
    out_dir, path, _, label = claim_result(cfg, checkpoint, int(state.get("iteration", 0)))
    result = locomotion.run_locomotion_eval(cfg, train_cfg, checkpoint, state, out_dir, label)
    atomic_write_text(json.dumps(_json_safe(result), indent=2), path)
    locomotion.print_table(result)
    print(f"wrote {path}")
    return path


def export_other_task(cfg: DictConfig, train_cfg: DictConfig, checkpoint: Path,
                      state: dict) -> Path:
    from gear_sonic.eval.onnx_export import export_run

    out_dir = Path(cfg.output_dir) if cfg.get("output_dir") else checkpoint.parent / "onnx"
    paths = export_run(train_cfg, state, checkpoint, out_dir, str(cfg.device))
    print(f"wrote {len(paths)} files to {out_dir}")
    return out_dir


def _eval_env_and_actor(cfg: DictConfig, train_cfg: DictConfig, checkpoint: Path, state: dict):
    from gear_sonic.eval.evaluate import build_eval_env_and_actor

    return build_eval_env_and_actor(train_cfg, state, str(checkpoint), 1, str(cfg.device))


def worst_clips(metrics: dict, count: int) -> list[str]:
    """Clip keys, worst first (gear_sonic.eval.metrics.worst_first, as the report orders them)."""
    from gear_sonic.eval.metrics import worst_first

    rows = sorted(metrics["clips"], key=worst_first)
    return [r["clip"] for r in rows[: max(0, count)]]


def run_extra(cfg: DictConfig, train_cfg: DictConfig, checkpoint: Path, state: dict) -> Path:
    """ONNX export, or videos of the worst clips of an earlier metrics_eval.json."""
    if cfg.get("export_onnx_only"):
        from gear_sonic.eval.onnx_export import export_env_actor

        out_dir = Path(cfg.output_dir) if cfg.get("output_dir") else checkpoint.parent / "onnx"
        env, actor = _eval_env_and_actor(cfg, train_cfg, checkpoint, state)
        try:
            paths = export_env_actor(actor, env, out_dir)
        finally:
            env.close()
        print(f"wrote {len(paths)} files to {out_dir}")
        return out_dir
    from gear_sonic.eval.render import render_clips

    metrics_path = Path(str(cfg.metrics_file))
    if not metrics_path.is_file():
        raise FileNotFoundError(f"++metrics_file={metrics_path}: no such file")
    metrics = json.loads(metrics_path.read_text())
    if metrics.get("motion_file") and not cfg.get("motion_file"):
        train_cfg.manager_env.commands.motion.motion_file = metrics["motion_file"]
    out_dir = (Path(cfg.output_dir) if cfg.get("output_dir") else metrics_path.parent) / "videos"
    env, actor = _eval_env_and_actor(cfg, train_cfg, checkpoint, state)
    try:
        motion = env.command().motion
        keys = [motion.keys[i] for i in motion.resident_ids.tolist()]
        wanted = worst_clips(metrics, int(cfg.get("num_render_videos", 3)))
        unknown = [k for k in wanted if k not in keys]
        if unknown:
            raise ValueError(
                f"++metrics_file={metrics_path}: clip {unknown[0]!r} is not in the motion set")
        paths = render_clips(env, actor.act_inference, [keys.index(k) for k in wanted], out_dir,
                             width=int(cfg.render_width), height=int(cfg.render_height),
                             use_encoder=metrics.get("use_encoder"))
    finally:
        env.close()
    print(f"wrote {len(paths)} videos to {out_dir}")
    return out_dir


@hydra.main(config_path="../config", config_name="base_eval", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from gear_sonic.utils.log_setup import configure_logging

    configure_logging()
    try:
        torch.set_grad_enabled(False)
        run_eval(cfg)
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as err:
        # Bad input: one clear line, no traceback wall.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
