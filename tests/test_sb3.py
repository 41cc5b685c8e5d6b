"""Stable-Baselines3 on our tasks: the VecEnv adapter, one entry point for PPO/SAC/TD3/A2C with
our experiment dir, checkpoints, resume and metrics.csv."""

from __future__ import annotations

import csv
import json

import gymnasium
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecCheckNan, VecMonitor

import gear_sonic.gym_interop  # noqa: F401  (registers the tasks)
from gear_sonic.checkpoint import load_checkpoint
from gear_sonic.sb3.train import torch_threads
from gear_sonic.sb3.vec_env import SB3VecEnv
from gear_sonic.train_agent_trl import run_training
from tests.conftest import compose_config

CARTPOLE = "gear_sonic/MjlabCartpoleBalance-v0"
# Tiny runs: 4 envs, 4-step episodes (0.2 s at 20 Hz), 32 env steps an iteration.
TINY_SB3 = (
    "num_envs=4",
    "sb3.env_kwargs.episode_length_s=0.2",
    "sb3.steps_per_iteration=32",
)
TINY_HYPER = {
    "ppo": ("sb3.hyperparameters.n_steps=8", "sb3.hyperparameters.batch_size=16"),
    "a2c": ("sb3.hyperparameters.n_steps=8",),
    "sac": ("sb3.hyperparameters.learning_starts=8", "sb3.hyperparameters.batch_size=16"),
    "td3": ("sb3.hyperparameters.learning_starts=8", "sb3.hyperparameters.batch_size=16"),
}


def sb3_config(tmp_path, algo: str, *overrides: str):
    return compose_config(
        f"+exp=sb3/cartpole_balance_{algo}",
        *TINY_SB3,
        *TINY_HYPER[algo],
        f"experiment_dir={tmp_path / algo}",
        *overrides,
    )


def test_vec_env_adapter_steps_all_envs_and_reports_time_outs():
    envs = gymnasium.make_vec(CARTPOLE, num_envs=4, device="cpu", episode_length_s=0.2)
    venv = VecCheckNan(VecMonitor(SB3VecEnv(envs)), raise_exception=True)
    assert venv.observation_space.shape == (5,) and venv.action_space.shape == (1,)
    obs = venv.reset()
    assert obs.shape == (4, 5) and obs.dtype == np.float32
    for _ in range(4):
        obs, rewards, dones, infos = venv.step(np.zeros((4, 1), np.float32))
    assert rewards.shape == (4,) and dones.all() and len(infos) == 4
    for info in infos:
        assert info["TimeLimit.truncated"] and info["terminal_observation"].shape == (5,)
        assert info["episode"]["l"] == 4  # VecMonitor saw the whole episode
    with pytest.raises(ValueError, match="sb3.obs_group='nope'.*actor"):
        SB3VecEnv(envs, obs_group="nope")
    # SB3 learns through it (a few PPO updates on 4 envs).
    with torch_threads(1):
        PPO("MlpPolicy", venv, n_steps=8, batch_size=16, device="cpu").learn(64)
    venv.close()


def test_ppo_run_writes_the_experiment_dir_resumes_and_evaluates(tmp_path):
    from scripts.evaluate_policy import evaluate_run

    exp_dir = run_training(sb3_config(tmp_path, "ppo", "sb3.iterations=2"))
    for name in ("config.yaml", "meta.yaml", "last.pt", "metrics.csv", "sb3_model.zip"):
        assert (exp_dir / name).is_file(), name
    state = load_checkpoint(exp_dir / "last.pt")  # weights_only: no pickled SB3 objects
    assert state["kind"] == "sb3" and state["iteration"] == 2 and state["total_env_steps"] >= 64
    # Resume to 3 iterations: the step count and rows continue, the launch is recorded.
    run_training(
        sb3_config(tmp_path, "ppo", "sb3.iterations=3", f"experiment_dir={exp_dir}", "+resume=True")
    )
    rows = list(csv.DictReader((exp_dir / "metrics.csv").open()))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    assert int(rows[2]["total_env_steps"]) > int(rows[1]["total_env_steps"])
    assert "train/value_loss" in rows[0] and float(rows[0]["env_steps_per_s"]) > 0
    assert len(OmegaConf.load(exp_dir / "meta.yaml").launches) == 2
    resumed = load_checkpoint(exp_dir / "last.pt")
    assert resumed["iteration"] == 3 and resumed["n_updates"] > state["n_updates"]
    result = evaluate_run(exp_dir, episodes=2, num_envs=2)
    assert result["num_episodes"] == 2 and result["success_rate"] == 1.0
    json.dumps(result)  # the evaluator's output is JSON as it is


@pytest.mark.parametrize("algo", ["sac", "td3", "a2c"])
def test_other_algorithms_run_through_the_same_entry_point(tmp_path, algo):
    exp_dir = run_training(sb3_config(tmp_path, algo, "sb3.iterations=1"))
    state = load_checkpoint(exp_dir / "last.pt")
    assert state["algorithm"] == algo and state["iteration"] == 1
    assert all(isinstance(v, torch.Tensor) for v in state["tensors"].values())
    assert (exp_dir / "metrics.csv").is_file()


def test_bad_sb3_input_fails_with_clear_messages(tmp_path):
    with pytest.raises(ValueError, match="sb3.algorithm='dqn'"):
        run_training(sb3_config(tmp_path, "ppo", "sb3.algorithm=dqn"))
    with pytest.raises(ValueError, match="registered gear_sonic tasks"):
        run_training(sb3_config(tmp_path, "ppo", "sb3.env_id=gear_sonic/Nope-v0"))
