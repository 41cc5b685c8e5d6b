"""Weights & Biases logging (off by default). The run id is kept in the experiment's meta.yaml, so
a resumed experiment logs into the same run, keyed by iteration. Online, a resume rewinds the run
to the checkpoint's iteration (`resume_from`), so iterations replayed after a crash are logged
once; offline runs cannot rewind and W&B drops the replayed steps (the first values are kept)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from gear_sonic import storage

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
        self.experiment_dir = storage.location(experiment_dir)
        self.run = None

    def on_train_start(self, trainer) -> None:
        if self.mode == "disabled" or not trainer.accelerator.is_main_process:
            return
        import wandb

        read = lambda name: OmegaConf.create(  # noqa: E731
            storage.read_text(storage.join(self.experiment_dir, name))
        )
        meta, config = read("meta.yaml"), read("config.yaml")
        # W&B keeps its files locally; a remote experiment dir gets a local staging folder.
        local_dir = self.experiment_dir
        if not isinstance(local_dir, Path):
            local_dir = storage.staging_dir(local_dir, "wandb")
        where = {"id": meta.wandb_run_id, "resume": "allow"}
        if trainer.iteration > 0 and self.mode == "online":
            where = {"resume_from": f"{meta.wandb_run_id}?_step={trainer.iteration}"}
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            name=self.run_name,
            mode=self.mode,
            dir=str(local_dir),
            config=OmegaConf.to_container(config),
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
