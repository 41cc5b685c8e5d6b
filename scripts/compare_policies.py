"""Compare two locomotion checkpoints (a teacher and its student) on the same command sweep.

    python scripts/compare_policies.py TEACHER.pt STUDENT.pt [--num-envs 16] [--duration-s 10]
        [--seed 0] [--commands '[[0.5,0,0],[0,0,0.5]]']

Each checkpoint is played with its own run's config.yaml (beside it or one folder up) through
gear_sonic/eval/locomotion.py: the same fixed commands, seed, env count and duration for both.
Prints per policy the velocity-tracking reward (track_lin_vel_xy_exp + track_ang_vel_z_exp,
summed over the window, mean over commands), tracking errors, return and fall rate; the last
line is `ratio student/teacher: X.XX` (of the tracking reward).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")


def train_config(path: Path):
    """The config.yaml of the run a checkpoint belongs to (beside it or one folder up)."""
    from omegaconf import OmegaConf

    from gear_sonic.eval_agent_trl import find_train_config

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    return OmegaConf.load(find_train_config(path))


def evaluate_file(path: Path, train_cfg, commands, args) -> dict:
    from gear_sonic.eval.evaluate import load_actor_checkpoint
    from gear_sonic.eval.locomotion import evaluate_locomotion, is_locomotion

    if not is_locomotion(train_cfg):
        raise ValueError(f"{path}: its run is not a velocity-tracking (locomotion) task")
    state = load_actor_checkpoint(path)
    return evaluate_locomotion(
        train_cfg,
        state,
        str(path),
        num_envs=args.num_envs,
        device=args.device,
        commands=commands,
        duration_s=args.duration_s,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("teacher", type=Path)
    parser.add_argument("student", type=Path)
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--commands",
        type=json.loads,
        default=None,
        help="JSON list of [v_x, v_y, yaw_rate] triples (default: the teacher run's "
        "eval_commands, else the 8 of gear_sonic/eval/locomotion.py)",
    )
    args = parser.parse_args(argv)
    from gear_sonic.eval.locomotion import run_eval_commands

    configs = {role: train_config(getattr(args, role)) for role in ("teacher", "student")}
    # Both policies play the teacher run's sweep (its eval_commands) unless --commands is given.
    commands = run_eval_commands(args.commands, configs["teacher"])
    results = {}
    for role in ("teacher", "student"):
        path = getattr(args, role)
        agg = evaluate_file(path, configs[role], commands, args)["aggregate"]
        results[role] = agg
        print(
            f"{role}: tracking reward {agg['tracking_reward']:.3f} | lin vel error "
            f"{agg['lin_vel_error']:.3f} m/s | yaw rate error {agg['yaw_rate_error']:.3f} rad/s"
            f" | return {agg['return_mean']:.3f} | fall rate {agg['fall_rate']:.3f} ({path})",
            flush=True,
        )
    teacher = results["teacher"]["tracking_reward"]
    ratio = results["student"]["tracking_reward"] / teacher if teacher > 0 else float("nan")
    print(f"ratio student/teacher: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
