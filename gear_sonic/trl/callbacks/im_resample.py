"""Re-draw the resident clip subset every `interval` iterations (datasets larger than memory);
clips with more failures are more likely to be drawn."""

from __future__ import annotations


class ImResampleCallback:
    def __init__(self, interval: int = 250):
        if interval < 1:
            raise ValueError("callbacks.im_resample.interval must be >= 1")
        self.interval = interval

    def on_iteration_end(self, trainer, iteration: int, metrics: dict) -> None:
        motion = trainer.env.command().motion
        if iteration % self.interval == 0 and motion.num_clips < motion.num_total_clips:
            trainer.env.resample_motions()
            trainer.restart_episode_stats()  # the re-draw cut every episode short
