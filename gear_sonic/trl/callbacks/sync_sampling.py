"""Average the adaptive-sampling counts across processes every `interval` iterations, so every
GPU draws hard clip segments from the failures seen by all of them (no-op on one process)."""

from __future__ import annotations


class SyncSamplingCallback:
    def __init__(self, interval: int = 200, command_name: str = "motion"):
        if interval < 1:
            raise ValueError("callbacks.sync_sampling.interval must be >= 1")
        self.interval = interval
        self.command_name = command_name

    def on_iteration_end(self, trainer, iteration: int, metrics: dict) -> None:
        if trainer.accelerator.num_processes == 1 or iteration % self.interval != 0:
            return
        sampler = trainer.env.command(self.command_name).sampler
        for name in ("failures", "episodes"):
            counts = getattr(sampler, name)
            counts.copy_(trainer.accelerator.reduce(counts.clone(), "mean"))
