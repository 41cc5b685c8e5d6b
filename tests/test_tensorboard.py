"""TensorBoard callback: a tiny training writes every metrics.csv column as event-file scalars
(read back with tensorboard's own reader), and a resumed run appends without duplicating the
iterations it replays."""

from __future__ import annotations

import csv
import math
from types import SimpleNamespace

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gear_sonic.train_agent_trl import run_training
from gear_sonic.trl.callbacks.tensorboard import TensorBoardCallback
from tests.conftest import compose_config

GO2_TINY = (
    "+exp=manager/locomotion/go2_velocity_cpu",
    "num_envs=4",
    "algo.config.num_mini_batches=2",
    "algo.config.num_steps_per_env=8",
    "algo.config.num_learning_epochs=1",
    "manager_env.config.episode_length_s=0.1",  # episodes end within a rollout
)


def read_scalars(log_dir) -> dict[str, dict[int, float]]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]
    }


def test_training_logs_every_metric_to_tensorboard(tmp_path):
    cfg = compose_config(
        *GO2_TINY,
        "algo.config.num_learning_iterations=2",
        "+callbacks=tensorboard",
        f"experiment_dir={tmp_path / 'exp'}",
    )
    exp_dir = run_training(cfg)
    with (exp_dir / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    scalars = read_scalars(exp_dir / "tensorboard")
    columns = [c for c in rows[0] if c != "iteration"]
    assert len(columns) > 10
    for column in columns:
        assert sorted(scalars.get(column, {})) == [1, 2], column
        for row in rows:
            logged, written = scalars[column][int(row["iteration"])], float(row[column])
            assert (math.isnan(logged) and math.isnan(written)) or math.isclose(
                logged, written, rel_tol=1e-5, abs_tol=1e-6
            ), column


def fake_trainer(iteration: int):
    return SimpleNamespace(iteration=iteration, accelerator=SimpleNamespace(is_main_process=True))


def run_iterations(exp_dir, start: int, end: int, offset: float) -> None:
    trainer = fake_trainer(start)
    callback = TensorBoardCallback(exp_dir)
    callback.on_train_start(trainer)
    for iteration in range(start + 1, end + 1):
        callback.on_iteration_end(trainer, iteration, {"loss/value": iteration + offset})
    callback.on_train_end(trainer)


def test_resume_appends_and_replayed_iterations_show_once(tmp_path):
    run_iterations(tmp_path, 0, 4, offset=0.0)  # killed after 4, last checkpoint at 2
    run_iterations(tmp_path, 2, 5, offset=100.0)  # the resumed run replays 3 and 4
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    values = read_scalars(tmp_path / "tensorboard")["loss/value"]
    assert values == {1: 1.0, 2: 2.0, 3: 103.0, 4: 104.0, 5: 105.0}
