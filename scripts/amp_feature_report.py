"""Which AMP features tell the policy's motion from the expert clips (docs/amp.md, "CPU demo").

    python scripts/amp_feature_report.py [--checkpoint RUN/last.pt] [--rollouts 2] [--top 25]
        [OVERRIDES ...]

OVERRIDES are the Hydra overrides of a training run (default: +exp=manager/amp/g1_walk_amp_cpu),
e.g. `++motion_file=my_clips "amp.clips=['*']" amp.norm_std_min=0.05`. The env and the AMP
trainer are built as training builds them; the policy (untrained, or --checkpoint's) plays
--rollouts rollouts, and each feature of a frame is printed with the clips' std (raw and floored)
and the policy's mean distance from the clips in normalised units (|z|), farthest first. A
feature marked "floored" (raw std below its floor) with a large |z| is one the clips hold still and
the policy moves: raise its floor in `amp.norm_std_min` or drop the term.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

DEFAULT_PRESET = "+exp=manager/amp/g1_walk_amp_cpu"


def build_trainer(overrides: list[str]):
    from accelerate import Accelerator
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from gear_sonic.envs import create_manager_env
    from gear_sonic.trl.builders import build_policy_and_value, ppo_config
    from gear_sonic.trl.trainer.amp_trainer import AMPTrainer

    if not any(o.lstrip("+").startswith("exp=") for o in overrides):
        overrides = [DEFAULT_PRESET, *overrides]
    with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
        cfg = compose("base", overrides=overrides)
    if "amp" not in cfg:
        raise SystemExit(f"{overrides}: not an AMP preset (no `amp:` section)")
    env = create_manager_env(cfg, device="cpu")
    actor, critic = build_policy_and_value(cfg, env.observation_shapes, env.num_actions)
    return AMPTrainer(
        env, actor, critic, ppo_config(cfg), Accelerator(cpu=True), instantiate(cfg.amp)
    )


def print_report(rows, top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="AMP features, farthest from the clips first (newest frame of a window)")
    for column in ("feature", "clip std", "floored std", "policy |z|", "separation"):
        table.add_column(column, justify="left" if column == "feature" else "right")
    for row in rows[:top]:
        floored = row.expert_std < row.norm_std
        table.add_row(
            row.name + (" (floored)" if floored else ""),
            f"{row.expert_std:.3f}",
            f"{row.norm_std:.3f}",
            f"{row.policy_abs_z:.2f}",
            f"{row.separation:.2f}",
        )
    Console(width=110).print(table)


def main(argv: list[str] | None = None) -> list:
    import torch

    from gear_sonic.checkpoint import load_checkpoint
    from gear_sonic.trl.amp.feature_report import feature_separation, frame_feature_names

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="an AMP run's .pt (default: untrained)")
    parser.add_argument("--rollouts", type=int, default=2)
    parser.add_argument("--top", type=int, default=25)
    args, overrides = parser.parse_known_args(argv)
    if args.rollouts < 1 or args.top < 1:
        parser.error("--rollouts and --top must be >= 1")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    trainer = build_trainer(overrides)
    if args.checkpoint is not None:
        trainer.load_state_dict(load_checkpoint(args.checkpoint))
    joints = list(trainer.env.env.scene["robot"].joint_names)
    policy = torch.cat([trainer.policy_rollout_windows() for _ in range(args.rollouts)])
    rows = feature_separation(
        trainer.normalize(policy),
        trainer.normalize(trainer.expert),
        trainer.expert.std(0),
        trainer.norm_std,
        frame_feature_names(trainer.amp.features, joints),
    )
    print_report(rows, args.top)
    trainer.env.close()
    return rows


if __name__ == "__main__":
    main()
