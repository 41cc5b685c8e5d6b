"""TensorBoard event files under `<experiment_dir>/tensorboard`: every numeric metric the trainer
logs, one point per iteration (off by default: `+callbacks/tensorboard=default`).

A resumed run appends a new event file to the same folder; `purge_step` tells TensorBoard to drop
the points of iterations past the checkpoint, so replayed iterations show once. A remote
experiment dir (storage URL) is written to a local staging folder and uploaded every
`upload_interval` iterations and at the end (gear_sonic/storage.py).
"""

from __future__ import annotations

from pathlib import Path

from gear_sonic import storage

SUBDIR = "tensorboard"


class TensorBoardCallback:
    def __init__(self, experiment_dir: str | Path, upload_interval: int = 10, flush_secs: int = 30):
        self.experiment_dir = storage.location(experiment_dir)
        self.upload_interval = max(1, int(upload_interval))
        self.flush_secs = int(flush_secs)
        self.writer = None
        self._uploader = None

    @property
    def log_dir(self) -> Path:
        if isinstance(self.experiment_dir, Path):
            return self.experiment_dir / SUBDIR
        return storage.staging_dir(self.experiment_dir, SUBDIR)

    def on_train_start(self, trainer) -> None:
        if not trainer.accelerator.is_main_process:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError(
                "callbacks.tensorboard needs the package tensorboard: pip install tensorboard"
            ) from None
        start = int(trainer.iteration)
        self.writer = SummaryWriter(
            log_dir=str(self.log_dir),
            purge_step=start + 1 if start > 0 else None,
            flush_secs=self.flush_secs,
        )
        if not isinstance(self.experiment_dir, Path):
            self._uploader = storage.TreeUploader(
                self.log_dir, storage.join(self.experiment_dir, SUBDIR)
            )

    def on_iteration_end(self, trainer, iteration: int, metrics: dict) -> None:
        if self.writer is None:
            return
        for key, value in metrics.items():
            scalar = _scalar(value)
            if scalar is not None:
                self.writer.add_scalar(key, scalar, global_step=iteration)
        if self._uploader is not None and iteration % self.upload_interval == 0:
            self.writer.flush()
            self._uploader.sync()

    def on_train_end(self, trainer) -> None:
        if self.writer is None:
            return
        self.writer.close()
        self.writer = None
        if self._uploader is not None:
            self._uploader.sync()


def _scalar(value) -> float | None:
    if hasattr(value, "item") and getattr(value, "numel", lambda: 1)() == 1:
        value = value.item()
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)  # nan too (no episode ended yet), as metrics.csv has it
    return None
