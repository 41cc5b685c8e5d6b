"""Weights & Biases logging (off by default). The run id is kept in the experiment's meta.yaml, so
a resumed experiment logs into the same run, keyed by iteration. Online, a resume rewinds the run
to the checkpoint's iteration (`resume_from`), so iterations replayed after a crash are logged
once; offline runs cannot rewind and W&B drops the replayed steps (the first values are kept)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

MODES = ("disabled", "online", "offline")


class WandbCallback:
    def __init__(
        self,
        mode: str = "disabled",
        project: str = "gear_sonic",
        entity: str | None = None,
        run_name: str | None = None,
        experiment_dir: str | Path = ".",
    ):
        if mode not in MODES:
            raise ValueError(f"callbacks.wandb.mode={mode!r}: choose one of {MODES}")
        self.mode = mode
        self.project = project
        self.entity = entity
        self.run_name = run_name
        self.experiment_dir = Path(experiment_dir)
        self.run = None

    def on_train_start(self, trainer) -> None:
        if self.mode == "disabled" or not trainer.accelerator.is_main_process:
            return
        import wandb

        meta = OmegaConf.load(self.experiment_dir / "meta.yaml")
        where = {"id": meta.wandb_run_id, "resume": "allow"}
        if trainer.iteration > 0 and self.mode == "online":
            where = {"resume_from": f"{meta.wandb_run_id}?_step={trainer.iteration}"}
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            name=self.run_name,
            mode=self.mode,
            dir=str(self.experiment_dir),
            config=OmegaConf.to_container(OmegaConf.load(self.experiment_dir / "config.yaml")),
            **where,
        )

    def on_iteration_end(self, trainer, iteration: int, metrics: dict) -> None:
        if self.run is not None:
            self.run.log(
                {k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=iteration
            )

    def on_train_end(self, trainer) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
