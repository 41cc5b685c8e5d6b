"""Shared fixtures: composed configs and small envs built in code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from gear_sonic.eval.exact_replay import exact_reset_overrides

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = str(REPO_ROOT / "config")
SAMPLE_MOTIONS = REPO_ROOT / "data" / "motions"
RELEASE_PRESET = "+exp=manager/universal_token/all_modes/sonic_release"
CPU_PRESET = "+exp=manager/universal_token/all_modes/sonic_cpu"
# The smallest training run of the CPU preset: a few seconds an iteration, a checkpoint each.
TINY_TRAINING = (
    "num_envs=4",
    "algo.config.num_mini_batches=2",
    "algo.config.num_steps_per_env=8",
    "algo.config.num_learning_epochs=1",
    "callbacks.model_save.save_interval=1",
    "callbacks.model_save.last_interval=1",
)

os.environ.setdefault("MUJOCO_GL", "egl")


def compose_config(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("base", overrides=list(overrides))


# The reference placed exactly on the robot: no reset noise, no randomisation, start at frame 0
# (the `reset` part of config/eval_overrides/exact_replay.yaml, as Hydra overrides).
EXACT_RESET = tuple(exact_reset_overrides())


@pytest.fixture(scope="session")
def standing_clip() -> Path:
    clips = sorted(SAMPLE_MOTIONS.glob("stand*.npz"))
    assert clips, f"no standing clip in {SAMPLE_MOTIONS}; run data_process/generate_sample_motions.py"
    return clips[0]


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks: thread start-up dominates, and on a busy 2-core machine a second intra-op
    thread only fights the simulator's threads for the cores (measured 6x slower updates).
    A module opts in with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
