"""Experiment dirs in object storage, against a real S3 API on localhost (moto's server): a tiny
training writes every file there and resumes from it, a process killed mid-upload leaves the last
good checkpoint readable, and bad storage input fails with one line and nothing written locally."""

from __future__ import annotations

import csv
import io
import math
import multiprocessing
import os
import shutil
import signal
import sys

import pytest
import torch
from omegaconf import OmegaConf

from gear_sonic import storage
from gear_sonic.checkpoint import load_checkpoint, save_checkpoint
from gear_sonic.train_agent_trl import prepare_experiment_dir, run_training
from tests.conftest import compose_config

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

BUCKET = "gear-sonic-test"
GO2_TINY = (
    "+exp=manager/locomotion/go2_velocity_cpu",
    "num_envs=4",
    "algo.config.num_mini_batches=2",
    "algo.config.num_steps_per_env=8",
    "algo.config.num_learning_epochs=1",
    "manager_env.config.episode_length_s=0.1",
    "callbacks.model_save.save_interval=1",
    "callbacks.model_save.last_interval=1",
)


class KillOnUpload:
    """WSGI middleware in front of moto: when the upload of `key` starts arriving, SIGKILL the
    process sending it (a crash mid-upload), then let moto handle what it received."""

    def __init__(self, app):
        self.app = app
        self.victim_pid = None
        self.key = None
        self.killed = False

    def __call__(self, environ, start_response):
        if (
            self.victim_pid is not None
            and environ["REQUEST_METHOD"] == "PUT"
            and environ.get("PATH_INFO", "").endswith(self.key)
        ):
            environ["wsgi.input"].read(64 * 1024)  # the first bytes of the body are here
            os.kill(self.victim_pid, signal.SIGKILL)
            self.victim_pid, self.killed = None, True
        return self.app(environ, start_response)


def reset_storage_clients():
    import s3fs

    storage._filesystem.cache_clear()
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    killer = KillOnUpload(server._server.app)
    server._server.app = killer
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "GEAR_SONIC_STAGING": str(tmp_path_factory.mktemp("staging")),
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    reset_storage_clients()
    fs, _ = storage.filesystem(f"s3://{BUCKET}")
    fs.mkdir(BUCKET)
    yield killer
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reset_storage_clients()
    server.stop()


def read_csv(url):
    return list(csv.DictReader(io.StringIO(storage.read_text(url))))


def test_training_writes_to_s3_and_resumes_from_it(s3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written locally by mistake would land here
    url = f"s3://{BUCKET}/runs/go2"

    def train(total):
        cfg = compose_config(
            *GO2_TINY,
            f"algo.config.num_learning_iterations={total}",
            "+callbacks=tensorboard",
            f"experiment_dir={url}",
            "+resume=auto",
        )
        return run_training(cfg)

    assert train(2) == url
    names = storage.list_names(url)
    for name in ("config.yaml", "meta.yaml", "last.pt", "model_step_000001.pt",
                 "model_step_000002.pt", "metrics.csv"):
        assert name in names, (name, names)
    assert load_checkpoint(f"{url}/last.pt")["iteration"] == 2

    train(3)  # +resume=auto finds last.pt in the bucket and continues it
    assert [int(r["iteration"]) for r in read_csv(f"{url}/metrics.csv")] == [1, 2, 3]
    meta = OmegaConf.create(storage.read_text(f"{url}/meta.yaml"))
    assert [launch.start_iteration for launch in meta.launches] == [0, 2]
    assert load_checkpoint(f"{url}/last.pt")["iteration"] == 3
    assert list(tmp_path.iterdir()) == []
    check_tensorboard_has_every_metric(url, tmp_path / "tensorboard")


def check_tensorboard_has_every_metric(url, local):
    """The event files uploaded by both launches hold every metrics.csv column at every
    iteration, once (tensorboard's own reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    names = storage.list_names(f"{url}/tensorboard", "events.out.tfevents.*")
    assert len(names) == 2, names  # one per launch
    for name in names:
        storage.download_file(f"{url}/tensorboard/{name}", local / name)
    events = EventAccumulator(str(local), size_guidance={"scalars": 0})
    events.Reload()
    rows = read_csv(f"{url}/metrics.csv")
    columns = [c for c in rows[0] if c != "iteration"]
    assert len(columns) > 10
    for column in columns:
        logged = {e.step: e.value for e in events.Scalars(column)}
        assert sorted(logged) == [1, 2, 3], column
        for row in rows:
            value, written = logged[int(row["iteration"])], float(row[column])
            assert (math.isnan(value) and math.isnan(written)) or math.isclose(
                value, written, rel_tol=1e-5, abs_tol=1e-6
            ), column


def upload_then_exit(state, url):
    save_checkpoint(state, url)
    os._exit(0)


def test_a_process_killed_mid_upload_leaves_the_last_good_checkpoint(s3):
    url = f"s3://{BUCKET}/killed/last.pt"
    save_checkpoint({"weights": torch.full((1 << 20,), 1.0), "iteration": 1}, url)
    newer = {"weights": torch.full((1 << 20,), 2.0), "iteration": 2}  # built here: no OpenMP
    reset_storage_clients()  # in a forked child, whose connections are its own
    child = multiprocessing.get_context("fork").Process(target=upload_then_exit, args=(newer, url))
    s3.key, s3.killed = "/killed/last.pt", False
    child.start()
    s3.victim_pid = child.pid
    child.join(timeout=30)
    s3.victim_pid = None
    assert s3.killed and child.exitcode == -signal.SIGKILL
    state = load_checkpoint(url)  # whole, and the previous one
    assert state["iteration"] == 1 and torch.equal(state["weights"], torch.full((1 << 20,), 1.0))


def test_bad_storage_input_fails_with_one_line_and_writes_nothing_locally(
    s3, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)

    cfg = compose_config(*GO2_TINY)

    def prepare(url):
        cfg.experiment_dir = url
        with pytest.raises(storage.StorageError) as err:
            prepare_experiment_dir(cfg, resume=False, hydra_files={})
        assert "\n" not in str(err.value)
        return str(err.value)

    assert "bucket does not exist" in prepare("s3://no-such-bucket/run")
    if "gcsfs" not in sys.modules:
        try:
            import gcsfs  # noqa: F401
        except ImportError:
            assert "pip install gcsfs" in prepare("gs://bucket/run")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    reset_storage_clients()
    try:
        assert "no credentials" in prepare(f"s3://{BUCKET}/run")
    finally:
        monkeypatch.undo()
        reset_storage_clients()
    assert list(tmp_path.iterdir()) == []


FAKE_METRICS = (
    "import json, pathlib, sys; out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, "
    "exist_ok=True); (out / 'metrics_eval.json').write_text(json.dumps(dict(aggregate=dict("
    "success_rate=1.0, progress_rate=1.0), clips=[])))"
)


def test_checkpoint_monitor_evaluates_a_run_in_s3(s3):
    from hydra import compose, initialize_config_dir

    from gear_sonic.eval_exp import CheckpointEvaluator
    from tests.conftest import CONFIG_DIR

    url = f"s3://{BUCKET}/monitored"
    storage.atomic_write_text("max_train_steps: 2\n", f"{url}/meta.yaml")
    for step in (1, 2):
        save_checkpoint({"iteration": step}, f"{url}/model_step_{step:06d}.pt")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "eval_exp",
            [f"experiment_dir={url}", "single_pass=true", "num_render_videos=0", "timeout_s=60"],
        )
    cfg.metrics_command = [sys.executable, "-c", FAKE_METRICS, "{output_dir}"]
    CheckpointEvaluator(cfg).run()
    for step in (1, 2):
        done = storage.read_text(f"{url}/eval/step_{step:06d}/done.json")
        assert '"success_rate": 1.0' in done
    assert storage.is_file(f"{url}/eval/report.html")
    # A second monitor on another machine (an empty mirror) finds both steps done in the bucket.
    shutil.rmtree(storage.staging_dir(url, "mirror"))
    again = CheckpointEvaluator(cfg)
    again.run()
    assert again.is_done(1) and again.is_done(2)
    assert not (again.exp_dir / "model_step_000001.pt").exists()  # done: not fetched again


def test_file_urls_are_local_paths_with_todays_atomic_writes(tmp_path):
    cfg = compose_config(*GO2_TINY, f"experiment_dir=file://{tmp_path}/run")
    assert prepare_experiment_dir(cfg, resume=False, hydra_files={}) == tmp_path / "run"
    assert cfg.experiment_dir == str(tmp_path / "run")
    assert (tmp_path / "run" / "config.yaml").is_file()
    save_checkpoint({"iteration": 1}, f"file://{tmp_path}/run/last.pt")
    assert load_checkpoint(tmp_path / "run" / "last.pt")["iteration"] == 1
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(".last.pt.*"))
