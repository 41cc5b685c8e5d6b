"""Checkpoints: `model_step_XXXXXX.pt` every `save_interval` iterations, `last.pt` every
`last_interval` and at the end. Rank 0 writes; every write is atomic (also to a storage URL)."""

from __future__ import annotations

from pathlib import Path

from gear_sonic import storage
from gear_sonic.checkpoint import save_checkpoint


class ModelSaveCallback:
    def __init__(self, save_dir: str | Path, save_interval: int = 2000, last_interval: int = 50):
        if save_interval < 1 or last_interval < 1:
            raise ValueError("callbacks.model_save: save_interval and last_interval must be >= 1")
        self.save_dir = storage.location(save_dir)
        self.save_interval = save_interval
        self.last_interval = last_interval

    def save(self, trainer, name: str) -> Path | None:
        state = trainer.state_dict()  # every rank joins any collective inside
        if not trainer.accelerator.is_main_process:
            return None
        return save_checkpoint(state, storage.join(self.save_dir, name))

    def on_iteration_end(self, trainer, iteration: int, metrics: dict) -> None:
        done = iteration  # the trainer reports completed iterations (1, 2, ...)
        if done % self.save_interval == 0:
            self.save(trainer, f"model_step_{done:06d}.pt")
        if done % self.last_interval == 0:
            self.save(trainer, "last.pt")

    def on_train_end(self, trainer) -> None:
        self.save(trainer, "last.pt")
        # A finished run always leaves its final step, so the checkpoint monitor (which stops at
        # max_train_steps) sees the end even when the run length is not a multiple of save_interval.
        done = trainer.iteration
        if done % self.save_interval != 0 and not getattr(trainer, "stop_requested", False):
            self.save(trainer, f"model_step_{done:06d}.pt")
