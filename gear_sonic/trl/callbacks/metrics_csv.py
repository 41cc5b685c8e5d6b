"""`metrics.csv` in the experiment dir: one row per iteration, so curves exist without W&B.

The first columns are fixed (iteration, mean_reward, mean_episode_length, env_steps_per_s), then
every logged key. A key that appears later widens the header (the file is rewritten atomically);
a resumed run appends to the same file, after dropping the rows of iterations past its checkpoint
(a run killed after iteration 8 with last.pt at 6 replays 7 and 8: each iteration is logged once).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from gear_sonic.utils.atomic_io import atomic_write_text

FIRST_COLUMNS = ("iteration", "mean_reward", "mean_episode_length", "env_steps_per_s")


class MetricsCsvCallback:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.columns: list[str] = []
        self.rows: list[dict] = []
        if self.path.exists():
            with self.path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                self.columns = list(reader.fieldnames or [])
                self.rows = list(reader)

    def on_train_start(self, trainer) -> None:
        if not trainer.accelerator.is_main_process:
            return
        kept = [row for row in self.rows if _iteration(row) <= trainer.iteration]
        if len(kept) != len(self.rows):
            self.rows = kept
            self._rewrite()

    def on_iteration_end(self, trainer, iteration: int, metrics: dict) -> None:
        if not trainer.accelerator.is_main_process:
            return
        row = {key: _scalar(value) for key, value in metrics.items() if _scalar(value) is not None}
        row["iteration"] = iteration
        new_keys = [key for key in row if key not in self.columns]
        self.rows.append(row)
        if new_keys or not self.path.exists():
            self.columns = [c for c in FIRST_COLUMNS] + sorted(
                (set(self.columns) | set(row)) - set(FIRST_COLUMNS)
            )
            self._rewrite()
        else:
            with self.path.open("a", newline="") as handle:
                csv.DictWriter(handle, fieldnames=self.columns).writerow(row)

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(buffer.getvalue(), self.path)


def _iteration(row: dict) -> float:
    try:
        return float(row.get("iteration"))
    except (TypeError, ValueError):
        return float("inf")  # unreadable rows go with the iterations being replayed


def _scalar(value):
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    return value if isinstance(value, (int, float)) else None
