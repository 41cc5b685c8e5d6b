"""`metrics.csv` in the experiment dir: one row per iteration, so curves exist without W&B.

The first columns are fixed (iteration, mean_reward, mean_episode_length, env_steps_per_s), then
every logged key. A key that appears later widens the header (the file is rewritten atomically);
a resumed run appends to the same file, after dropping the rows of iterations past its checkpoint
(a run killed after iteration 8 with last.pt at 6 replays 7 and 8: each iteration is logged once).
In a remote experiment dir (a storage URL) the whole file is uploaded every `remote_sync_interval`
iterations and at the end, each upload whole (gear_sonic/storage.py).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from gear_sonic import storage

FIRST_COLUMNS = ("iteration", "mean_reward", "mean_episode_length", "env_steps_per_s")


class MetricsCsvCallback:
    def __init__(self, path: str | Path, remote_sync_interval: int = 10):
        self.path = storage.location(path)
        self.remote = not isinstance(self.path, Path)
        self.remote_sync_interval = max(1, int(remote_sync_interval))
        self.columns: list[str] = []
        self.rows: list[dict] = []
        if storage.is_file(self.path):
            reader = csv.DictReader(io.StringIO(storage.read_text(self.path), newline=""))
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
        if new_keys:
            self.columns = [c for c in FIRST_COLUMNS] + sorted(
                (set(self.columns) | set(row)) - set(FIRST_COLUMNS)
            )
        if self.remote:
            if iteration % self.remote_sync_interval == 0:
                self._rewrite()
            return
        if new_keys or not self.path.exists():
            self._rewrite()
        else:
            with self.path.open("a", newline="") as handle:
                csv.DictWriter(handle, fieldnames=self.columns).writerow(row)

    def _rewrite(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(self.rows)
        storage.atomic_write_text(buffer.getvalue(), self.path)

    def on_train_end(self, trainer) -> None:
        if self.remote and trainer.accelerator.is_main_process:
            self._rewrite()


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
