"""Alias of generate_motions.py, kept for existing commands and docs.

    python data_process/generate_sample_motions.py [--out data/motions] [--seed 0] [...]

The original ten sample clips are now part of the larger procedural set written
by data_process/generate_motions.py (same specs, same seeded perturbations, so
they are regenerated with the same data); all arguments are passed through.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Allow running as a plain script from any working directory.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from data_process.generate_motions import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
