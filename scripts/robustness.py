"""Robustness benchmark of a checkpoint: `python scripts/robustness.py +checkpoint=PATH [overrides]`.

Pushes, friction, added mass, action delay and observation noise at growing levels; survival and
completion per level and one `robustness/score` in [0, 1], written to metrics_eval.json in
`<experiment dir>/eval/step_<iteration>/robustness-<backend>/` (shown in eval/report.html).
Settings and their units: config/robustness/default.yaml; the method: gear_sonic/eval/robustness.py.

    backend=deploy               plain MuJoCo through gear_sonic/deploy (default: env, batched)
    perturbations.push=[0,1,2]   other levels; perturbations.mass=null leaves a kind out
    trials=8 max_steps=100       trials per level, control steps per trial
    ++motion_file=PATH           other clips than the training set
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
EXIT_BAD_INPUT = 2


@hydra.main(config_path="../config/robustness", config_name="default", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from gear_sonic.eval.robustness import run_benchmark
    from gear_sonic.utils.log_setup import configure_logging

    configure_logging()
    try:
        run_benchmark(cfg)
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as err:  # bad input
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
