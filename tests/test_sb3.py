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
    with pytest.raises(ValueError, match="SB3 runs write a local dir only"):
        run_training(sb3_config(tmp_path, "ppo", "experiment_dir=s3://bucket/run"))
    assert not any(tmp_path.iterdir())  # nothing written locally by mistake
    with pytest.raises(ValueError, match="sb3.algorithm='dqn'"):
        run_training(sb3_config(tmp_path, "ppo", "sb3.algorithm=dqn"))
    with pytest.raises(ValueError, match="registered gear_sonic tasks"):
        run_training(sb3_config(tmp_path, "ppo", "sb3.env_id=gear_sonic/Nope-v0"))


def test_sb3_ppo_learns_cartpole_balance_through_our_adapter():
    """SB3's PPO, through SB3VecEnv over our batched env (mjlab's cartpole on the native MuJoCo
    backend), turns a policy that lets the pole fall into one that balances it.

    The untrained deterministic policy pushes ~0 and the pole falls from its 2-degree start
    (return ~3.5 of 5 over a 5 s episode). A broken adapter would not learn: actions ignored
    leaves the return where it was, zero or misrouted rewards give no signal, observations of
    other envs give the policy nothing to act on. Time goes to SB3's update (~60 %) and the env
    step (~35 %); the adapter itself is ~1 %.
    """
    from stable_baselines3.common.evaluation import evaluate_policy

    num_envs, episode_s = 32, 5.0
    envs = gymnasium.make_vec(
        CARTPOLE, num_envs=num_envs, device="cpu", seed=0, episode_length_s=episode_s
    )
    venv = VecMonitor(SB3VecEnv(envs))
    with torch_threads(1):
        model = PPO(
            "MlpPolicy",
            venv,
            n_steps=64,  # 2048 transitions a rollout, 8 mini-batches, 10 epochs
            batch_size=256,
            learning_rate=3e-3,
            gamma=0.95,  # balancing needs a short horizon; learns faster than 0.99
            policy_kwargs={"log_std_init": -1.0},  # std 0.37: +-1 pushes at std 1 swamp the signal
            seed=0,
            device="cpu",
        )

        def deterministic_return() -> float:
            mean, _ = evaluate_policy(model, venv, n_eval_episodes=num_envs, deterministic=True)
            return float(mean)

        untrained = deterministic_return()
        model.learn(24_576)
        trained = deterministic_return()
    venv.close()
    print(
        f"cartpole balance, deterministic return of {episode_s} s: {untrained:.2f} -> {trained:.2f}"
    )
    assert untrained < 0.8 * episode_s  # the pole falls without control
    assert trained > 0.9 * episode_s and trained > untrained + 1.0, (untrained, trained)
