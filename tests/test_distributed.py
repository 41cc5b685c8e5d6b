"""Several training processes for real: two CPU ranks (gloo) through torchrun and accelerate."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import torch
from omegaconf import OmegaConf

from tests.conftest import CPU_PRESET, REPO_ROOT, TINY_TRAINING

TRAIN = str(REPO_ROOT / "gear_sonic" / "train_agent_trl.py")
TINY = (
    *TINY_TRAINING,
    # Every iteration: average the sampling counts, then prove the replicas agree.
    "callbacks.sync_sampling.interval=1",
    "callbacks.ddp_check.interval=1",
    "callbacks.ddp_check.compare_env_state=true",
)
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        *args,
    ]


def read_metrics(exp_dir):
    with (exp_dir / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_advantages_are_normalised_with_global_statistics(tmp_path):
    script = str(REPO_ROOT / "tests" / "ddp_scripts" / "normalize_advantages.py")
    result = subprocess.run(
        torchrun(script, str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env=dict(ENV, PYTHONPATH=str(REPO_ROOT)),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    everything = torch.tensor(ranks[0]["values"] + ranks[1]["values"], dtype=torch.float64)
    assert (
        abs(everything.mean().item()) < 1e-5
        and abs(everything.std(unbiased=False).item() - 1) < 1e-4
    )
    # Each rank alone is far from zero mean: the statistics were global, not per rank.
    assert (
        torch.tensor(ranks[0]["values"]).mean()
        < -0.5
        < 0.5
        < torch.tensor(ranks[1]["values"]).mean()
    )


def test_two_cpu_ranks_train_agree_and_resume(tmp_path):
    exp_dir = tmp_path / "ddp"
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO_ROOT / "scripts" / "accelerate" / "cpu_2proc.yaml"),
        "--main_process_port",
        str(free_port()),
        TRAIN,
        CPU_PRESET,
        *TINY,
        "algo.config.num_learning_iterations=2",
        f"experiment_dir={exp_dir}",
    ]
    result = subprocess.run(
        launch, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT, env=ENV
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_metrics(exp_dir)
    assert [int(r["iteration"]) for r in rows] == [1, 2]  # rank 0 alone writes
    # Both ranks' env-steps are counted: 2 ranks x 4 envs x 8 steps per iteration.
    assert [int(float(r["total_env_steps"])) for r in rows] == [64, 128]
    assert all(float(r["ddp/replicas_identical"]) == 1.0 for r in rows)
    meta = OmegaConf.load(exp_dir / "meta.yaml")
    assert meta.launches[0].num_processes == 2
    assert sorted(p.name for p in exp_dir.glob("*.pt")) == [
        "last.pt",
        "model_step_000001.pt",
        "model_step_000002.pt",
    ]

    resume = torchrun(
        TRAIN,
        CPU_PRESET,
        *TINY,
        "algo.config.num_learning_iterations=3",
        f"experiment_dir={exp_dir}",
        "+resume=True",
    )
    result = subprocess.run(
        resume, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT, env=ENV
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed" in result.stdout + result.stderr
    assert [int(r["iteration"]) for r in read_metrics(exp_dir)] == [1, 2, 3]
    assert torch.load(exp_dir / "last.pt", weights_only=True)["total_env_steps"] == 192
    assert [
        launch.start_iteration for launch in OmegaConf.load(exp_dir / "meta.yaml").launches
    ] == [0, 2]


def _rank_pids(launcher_pid: int) -> dict[int, int]:
    """RANK -> pid of the launcher's worker processes."""
    pids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            if parent != launcher_pid:
                continue
            with open(f"/proc/{entry}/environ", "rb") as handle:
                env = dict(
                    item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item
                )
            if b"RANK" in env:
                pids[int(env[b"RANK"])] = int(entry)
        except (OSError, ValueError, IndexError):
            continue
    return pids


def test_when_one_rank_dies_the_other_stops_with_a_message(tmp_path):
    exp_dir = tmp_path / "dies"
    command = torchrun(
        TRAIN,
        CPU_PRESET,
        *TINY,
        "algo.config.num_learning_iterations=1000",
        "callbacks.model_save.save_interval=1000",
        f"experiment_dir={exp_dir}",
    )
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO_ROOT, env=ENV
    )
    deadline = time.time() + 600
    while (
        not (exp_dir / "metrics.csv").exists() and time.time() < deadline and process.poll() is None
    ):
        time.sleep(0.5)
    ranks = _rank_pids(process.pid)
    assert process.poll() is None and 1 in ranks, process.stdout.read()[-3000:]
    os.kill(ranks[1], signal.SIGKILL)  # e.g. the OOM killer takes one rank
    output, _ = process.communicate(timeout=180)  # no hang
    assert process.returncode != 0
    # Whichever comes first: the launcher's SIGTERM or rank 0's failed collective.
    assert (
        "rank 0: stopped by the launcher" in output
        or "rank 0: lost contact with another rank" in output
    ), output[-3000:]
    assert (exp_dir / "last.pt").is_file()  # what was saved stays


def test_rendezvous_that_never_completes_fails_with_one_line(tmp_path):
    env = dict(
        ENV,
        WORLD_SIZE="2",
        RANK="1",
        LOCAL_RANK="1",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
    )
    result = subprocess.run(
        [
            sys.executable,
            TRAIN,
            CPU_PRESET,
            *TINY,
            "dist_timeout_s=5",
            f"experiment_dir={tmp_path / 'x'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env=env,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "did not form within 5 s" in result.stderr and "Traceback" not in result.stderr


def test_lost_peer_errors_are_told_apart_from_other_runtime_errors():
    from gear_sonic.trl.distributed import lost_peer_message

    gloo = RuntimeError(
        "[gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:61160: Connection reset by peer."
    )
    message = lost_peer_message(0, gloo)
    assert message.startswith("rank 0: lost contact with another rank (")
    assert "Connection reset by peer" in message and "last.pt" in message
    assert lost_peer_message(0, RuntimeError("shape mismatch in matmul")) is None
    assert lost_peer_message(0, ValueError("Connection reset by peer")) is None
