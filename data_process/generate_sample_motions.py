"""Generate the synthetic G1 sample motion set (IK-driven, checked for plausibility).

    python data_process/generate_sample_motions.py [--out data/motions] [--seed 0]

Writes one NPZ per clip plus a README with the clip table, prints one report
line per clip and exits non-zero if any clip fails a plausibility check.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# Allow running as a plain script from any working directory.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from data_process.motion_gen.checks import evaluate_clip, failed_checks, format_report  # noqa: E402
from data_process.motion_gen.clips import CLIPS, ClipSpec  # noqa: E402
from data_process.motion_gen.export import clip_arrays, save_clip  # noqa: E402
from data_process.motion_gen.balance import solve_balanced  # noqa: E402
from data_process.motion_gen.readme import write_readme  # noqa: E402
from data_process.motion_gen.sim_check import (  # noqa: E402
    SIM_CHECKED_CLIPS, format_sim_report, track_clip)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "data" / "motions")
    parser.add_argument("--seed", type=int, default=0, help="perturbs speeds and amplitudes only")
    parser.add_argument("--only", nargs="*", default=None, help="generate only these clips")
    parser.add_argument("--skip-sim", action="store_true", help="skip the PD tracking sanity check")
    return parser.parse_args()


def generate_clip(spec: ClipSpec, index: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, index])
    plan = spec.build(rng)
    qpos, _ = solve_balanced(plan.targets, plan.zmp)
    return clip_arrays(qpos, plan.contact)


def main() -> int:
    args = parse_args()
    selected = [(i, c) for i, c in enumerate(CLIPS) if args.only is None or c.name in args.only]
    start = time.time()
    all_ok, summary = True, []
    for index, spec in selected:
        clip_start = time.time()
        arrays = generate_clip(spec, index, args.seed)
        metrics = evaluate_clip(arrays)
        failures = failed_checks(metrics)
        all_ok &= not failures
        seconds = len(arrays["joint_pos"]) / float(arrays["fps"][0])
        save_clip(args.out / f"{spec.name}.npz", arrays)
        print(format_report(spec.name, seconds, metrics, failures)
              + f" | {time.time() - clip_start:.1f}s", flush=True)
        summary.append((spec, seconds, metrics))
        if not args.skip_sim:
            sim = track_clip(arrays)
            # Only standing clips must survive open-loop tracking; see sim_check.py.
            must_pass = spec.name in SIM_CHECKED_CLIPS
            all_ok &= sim["ok"] or not must_pass
            tag = "" if must_pass else " (info only)"
            print("     " + format_sim_report(spec.name, sim) + tag, flush=True)
    if args.only is None:
        write_readme(args.out, summary, args.seed)
    total_mb = sum(p.stat().st_size for p in args.out.glob("*.npz")) / 2**20
    print(f"{len(selected)} clips, {total_mb:.2f} MB in {args.out},"
          f" {time.time() - start:.1f}s total,"
          f" {'all checks passed' if all_ok else 'SOME CHECKS FAILED'}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
