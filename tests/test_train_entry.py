"""train_agent_trl.py end to end on CPU: experiment dir, checkpoints, resume, bad input."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from omegaconf import OmegaConf

from gear_sonic.train_agent_trl import prepare_experiment_dir, run_training
from tests.conftest import CPU_PRESET, REPO_ROOT, TINY_TRAINING, compose_config

TINY = TINY_TRAINING


def tiny_config(tmp_path, *overrides):
    return compose_config(
        CPU_PRESET,
        *TINY,
        f"experiment_dir={tmp_path / 'exp'}",
        *overrides,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("train")
    cfg = tiny_config(tmp_path, "algo.config.num_learning_iterations=2")
    exp_dir = run_training(cfg)
    return tmp_path, exp_dir


def read_metrics(exp_dir):
    with (exp_dir / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_two_iterations_write_the_experiment_dir(trained):
    _, exp_dir = trained
    for name in (
        "config.yaml",
        "meta.yaml",
        "last.pt",
        "model_step_000001.pt",
        "model_step_000002.pt",
        "metrics.csv",
    ):
        assert (exp_dir / name).is_file(), name
    meta = OmegaConf.load(exp_dir / "meta.yaml")
    assert meta.max_train_steps == 2 and len(meta.wandb_run_id) == 8
    assert len(meta.launches) == 1 and meta.launches[0].start_iteration == 0
    assert meta.launches[0].num_processes == 1
    config = (exp_dir / "config.yaml").read_text()
    assert "${" in config  # unresolved: interpolations kept for the reader
    rows = read_metrics(exp_dir)
    assert [int(r["iteration"]) for r in rows] == [1, 2]
    for column in (
        "mean_reward",
        "mean_episode_length",
        "env_steps_per_s",
        "loss/surrogate",
        "policy/actor_lr",
    ):
        assert column in rows[0], column
    assert any(c.startswith("Episode_Reward/") for c in rows[0])
    assert any(c.startswith("Episode_Termination/") for c in rows[0])
    state = torch.load(exp_dir / "last.pt", weights_only=True)
    assert state["iteration"] == 2 and "env" in state


def test_resume_after_a_crash_logs_each_iteration_once_and_stops_at_the_total(trained):
    tmp_path, exp_dir = trained
    # The state a kill -9 leaves: metrics.csv has iterations 1-2, last.pt is from iteration 1.
    shutil.copyfile(exp_dir / "model_step_000001.pt", exp_dir / "last.pt")
    cfg = tiny_config(tmp_path, "algo.config.num_learning_iterations=3", "+resume=True")
    run_training(cfg)
    after = torch.load(exp_dir / "last.pt", weights_only=True)
    assert after["iteration"] == 3  # the total, not 1 + 3
    assert [int(r["iteration"]) for r in read_metrics(exp_dir)] == [1, 2, 3]
    assert float(read_metrics(exp_dir)[2]["policy/actor_lr"]) > 0
    meta = OmegaConf.load(exp_dir / "meta.yaml")
    assert meta.max_train_steps == 3
    assert [launch.start_iteration for launch in meta.launches] == [0, 1]
    assert [launch.planned_iterations for launch in meta.launches] == [2, 3]
    # A requeued job with the same command line ends at once instead of training on.
    run_training(tiny_config(tmp_path, "algo.config.num_learning_iterations=3", "+resume=True"))
    assert torch.load(exp_dir / "last.pt", weights_only=True)["iteration"] == 3
    assert [int(r["iteration"]) for r in read_metrics(exp_dir)] == [1, 2, 3]
    assert len(OmegaConf.load(exp_dir / "meta.yaml").launches) == 3


def test_checkpoint_starts_a_new_experiment_from_weights(trained, tmp_path):
    _, exp_dir = trained
    cfg = compose_config(
        CPU_PRESET,
        *TINY,
        f"experiment_dir={tmp_path / 'fresh'}",
        "algo.config.num_learning_iterations=1",
        f"+checkpoint={exp_dir / 'last.pt'}",
    )
    fresh = run_training(cfg)
    assert torch.load(fresh / "last.pt", weights_only=True)["iteration"] == 1


def run_cli(*args, timeout=600):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "gear_sonic" / "train_agent_trl.py"), CPU_PRESET, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=env,
    )


def test_bad_inputs_fail_with_clear_messages(trained, tmp_path):
    _, exp_dir = trained
    cases = [
        (
            (f"experiment_dir={tmp_path / 'a'}", "+checkpoint=/no/such/model.pt"),
            "+checkpoint=/no/such/model.pt",
        ),
        ((f"experiment_dir={tmp_path / 'b'}", "+resume=True"), "no last.pt"),
        (
            (f"experiment_dir={tmp_path / 'c'}", "num_envs=2", "algo.config.num_mini_batches=4"),
            "num_mini_batches",
        ),
        (
            (f"experiment_dir={tmp_path / 'd'}", "++algo.config.clip_prm=0.1"),
            "algo.config.clip_prm",
        ),
        ((f"experiment_dir={tmp_path / 'e'}", "device=cuda:3"), "device=cuda:3"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").glob("*.pt"))


def test_checkpoint_from_another_architecture_names_the_parameter(trained, tmp_path):
    _, exp_dir = trained
    cfg = compose_config(
        CPU_PRESET,
        *TINY,
        f"experiment_dir={tmp_path / 'other'}",
        "algo.config.num_learning_iterations=1",
        "actor_critic.critic.hidden_dims=[64,32]",
        f"+checkpoint={exp_dir / 'last.pt'}",
    )
    with pytest.raises(ValueError, match=r"critic.*shape"):
        run_training(cfg)
    assert (exp_dir / "last.pt").is_file()  # nothing already written is touched


def test_two_experiments_started_together_get_two_dirs(tmp_path):
    first = tiny_config(tmp_path)
    second = tiny_config(tmp_path)  # the same experiment_dir, as two jobs started in one second
    dirs = [prepare_experiment_dir(cfg, resume=False, hydra_files={}) for cfg in (first, second)]
    assert dirs[0] == tmp_path / "exp" and dirs[1] == tmp_path / "exp-1"
    assert all((d / "config.yaml").is_file() and (d / "meta.yaml").is_file() for d in dirs)


def test_multirun_dirs_name_their_job_and_overrides(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "gear_sonic" / "train_agent_trl.py"),
            "-m",
            CPU_PRESET,
            "seed=1,2",
            f"base_dir={tmp_path}",
            "algo.config.num_learning_iterations=0",
            "num_envs=4",
            "algo.config.num_mini_batches=2",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    dirs = sorted(p.name for p in (tmp_path / "TRL_G1_Track").glob("sonic_cpu-*"))
    assert len(dirs) == 2, dirs
    assert dirs[0].endswith("_job0_seed=1") and dirs[1].endswith("_job1_seed=2"), dirs


def test_ctrl_c_saves_last_checkpoint_and_exits_cleanly(tmp_path):
    exp_dir = tmp_path / "interrupted"
    command = [
        sys.executable,
        str(REPO_ROOT / "gear_sonic" / "train_agent_trl.py"),
        CPU_PRESET,
        *TINY,
        "callbacks.model_save.last_interval=1000",
        "callbacks.model_save.save_interval=1000",
        "algo.config.num_learning_iterations=1000",
        f"experiment_dir={exp_dir}",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT
    )
    deadline = time.time() + 600
    while (
        not (exp_dir / "metrics.csv").exists() and time.time() < deadline and process.poll() is None
    ):
        time.sleep(0.5)
    assert process.poll() is None, process.stdout.read()[-3000:]
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    state = torch.load(exp_dir / "last.pt", weights_only=True)
    assert 1 <= state["iteration"] < 1000
    assert "Traceback" not in output


def test_resume_auto_starts_then_continues_the_same_dir(tmp_path):
    def run(total):
        cfg = compose_config(
            CPU_PRESET,
            *TINY,
            f"experiment_dir={tmp_path / 'job'}",
            f"algo.config.num_learning_iterations={total}",
            "+resume=auto",
        )
        return run_training(cfg)

    assert run(1) == tmp_path / "job"  # no last.pt yet: a new run in exactly that dir
    assert run(2) == tmp_path / "job"  # requeued: continues it
    assert torch.load(tmp_path / "job" / "last.pt", weights_only=True)["iteration"] == 2
    assert [int(r["iteration"]) for r in read_metrics(tmp_path / "job")] == [1, 2]
    with pytest.raises(ValueError, match=r"\+resume='maybe'"):
        run_training(
            compose_config(CPU_PRESET, *TINY, f"experiment_dir={tmp_path / 'x'}", "+resume=maybe")
        )
