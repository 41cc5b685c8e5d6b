"""Evaluate any trained run over N episodes: mean/std return, success rate, JSON.

Works for every trainer and task: our PPO on a task preset or on a gymnasium env (+exp=gym/...),
and Stable-Baselines3 runs (+exp=sb3/...). The run is named by its experiment dir.

    python scripts/evaluate_policy.py EXP_DIR [--checkpoint PATH] [--episodes 20]
        [--num-envs 4] [--stochastic] [--success time_out|return>=X] [--seed 0]
        [--device cpu] [--output PATH]

The JSON (default EXP_DIR/eval_episodes.json) holds num_episodes, deterministic,
success_criterion, mean_return, std_return, success_rate, mean_length, returns, lengths, and
the run's experiment_dir and checkpoint. Success by default: the episode ended by its time
limit, not by a termination.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from gear_sonic.utils.atomic_io import atomic_write_text


def evaluate_run(
    exp_dir: Path,
    checkpoint: Path | None = None,
    episodes: int = 20,
    num_envs: int = 4,
    deterministic: bool = True,
    success: str = "time_out",
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    from gear_sonic.eval.episodes import run_episodes, success_function
    from gear_sonic.gym_interop.policies import load_policy_and_env

    success_function(success)  # a bad criterion fails before anything slow starts
    envs, policy = load_policy_and_env(exp_dir, checkpoint, num_envs, device, seed)
    try:
        results = run_episodes(envs, policy, episodes, deterministic, success, seed=seed)
    finally:
        envs.close()
    out = results.to_dict()
    out["experiment_dir"] = str(exp_dir)
    out["checkpoint"] = str(checkpoint or Path(exp_dir) / "last.pt")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment_dir", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: last.pt")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--stochastic", action="store_true", help="sample actions (default: mean)")
    parser.add_argument("--success", default="time_out", help="time_out or return>=X")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    from gear_sonic.eval.episodes import EpisodeResults, summary_line

    try:
        out = evaluate_run(
            args.experiment_dir,
            args.checkpoint,
            args.episodes,
            args.num_envs,
            not args.stochastic,
            args.success,
            args.seed,
            args.device,
        )
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    output = args.output or args.experiment_dir / "eval_episodes.json"
    atomic_write_text(json.dumps(out, indent=2) + "\n", output)
    fields = {k: out[k] for k in EpisodeResults.__dataclass_fields__}
    print(summary_line(EpisodeResults(**fields)))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
