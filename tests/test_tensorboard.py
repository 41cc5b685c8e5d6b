"""TensorBoard callback: on by config, event files readable by tensorboard's own reader, and a
resumed run appends without duplicating the iterations it replays. That a real training logs
every metrics.csv column is checked on S3 in tests/test_storage.py (one training for both)."""

from __future__ import annotations

from types import SimpleNamespace

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gear_sonic.train_agent_trl import build_callbacks
from gear_sonic.trl.callbacks.tensorboard import TensorBoardCallback
from tests.conftest import compose_config


def read_scalars(log_dir) -> dict[str, dict[int, float]]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]
    }


def test_plus_callbacks_tensorboard_writes_under_the_experiment_dir(tmp_path):
    cfg = compose_config("+callbacks=tensorboard", f"experiment_dir={tmp_path}")
    callbacks = [c for c in build_callbacks(cfg) if isinstance(c, TensorBoardCallback)]
    assert len(callbacks) == 1 and callbacks[0].log_dir == tmp_path / "tensorboard"
    assert not any(isinstance(c, TensorBoardCallback) for c in build_callbacks(
        compose_config(f"experiment_dir={tmp_path}")))  # off by default


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
