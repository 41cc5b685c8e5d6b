"""gymnasium interop: our tasks as gymnasium envs (checkers, SAME_STEP autoreset, spaces from the
obs groups), gymnasium envs under our trainer, the episode evaluator, the learning benchmark."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import gear_sonic.gym_interop  # noqa: F401  (registers the tasks)
from gear_sonic.eval.episodes import run_episodes, success_function
from gear_sonic.gym_interop import check_env_id, registered_ids
from gear_sonic.gym_interop.registration import discover_task_presets, task_id
from tests.conftest import compose_config

CARTPOLE = "gear_sonic/MjlabCartpoleBalance-v0"
SHORT_EPISODES = {"episode_length_s": 0.2}  # 4 steps at cartpole's 20 Hz


@pytest.fixture(scope="module")
def cartpole_envs():
    envs = gymnasium.make_vec(CARTPOLE, num_envs=3, device="cpu", **SHORT_EPISODES)
    yield envs
    envs.close()


def test_every_task_preset_is_registered_and_unknown_ids_list_them():
    presets = discover_task_presets()
    assert presets["Go2VelocityCpu"] == "manager/locomotion/go2_velocity_cpu"
    assert not any(p.startswith(("sb3/", "gym/")) for p in presets.values())  # learners, not tasks
    for name in presets:
        assert task_id(name) in registered_ids()
    with pytest.raises(ValueError, match="registered gear_sonic tasks: .*Go2VelocityCpu-v0"):
        check_env_id("gear_sonic/NoSuchTask-v0")
    with pytest.raises(ValueError, match="make_vec"):
        gymnasium.make(CARTPOLE, num_envs=4)


def test_one_env_passes_gymnasium_and_sb3_checkers():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gymnasium.make(CARTPOLE, device="cpu")
    check_env(env.unwrapped, skip_render_check=True, skip_close_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    env.close()


def test_vector_env_resets_in_the_same_step_and_keeps_the_final_obs(cartpole_envs):
    envs = cartpole_envs
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert list(envs.single_observation_space.spaces) == ["actor", "critic"]
    assert envs.single_action_space.shape == (1,) and envs.single_action_space.high[0] == 1.0
    obs, _ = envs.reset(seed=3)
    assert envs.observation_space.contains(obs)
    for step in range(4):
        obs, reward, terminated, truncated, info = envs.step(np.full((3, 1), 0.5, np.float32))
        assert reward.shape == (3,) and reward.dtype == np.float32
        if step < 3:
            assert not truncated.any() and "final_obs" not in info
    assert truncated.all() and not terminated.any() and info["_final_obs"].all()
    # The returned obs are the new episodes' first ones, the final ones sit in info.
    assert not np.allclose(info["final_obs"]["actor"], obs["actor"])
    assert np.abs(obs["actor"][:, 0]).max() <= 0.1 + 1e-6  # reset slider range (-0.1, 0.1)


def test_evaluator_counts_episodes_per_env_and_applies_the_criterion(cartpole_envs):
    results = run_episodes(
        cartpole_envs, lambda obs, det: np.zeros((3, 1), np.float32), num_episodes=4, seed=0
    )
    assert results.num_episodes == 4 and results.lengths == [4, 4, 4, 4]
    assert results.success_rate == 1.0  # every episode ended by its time limit
    assert results.std_return >= 0 and set(results.to_dict()) >= {
        "mean_return",
        "std_return",
        "success_rate",
        "num_episodes",
        "deterministic",
    }
    flags = success_function("return>=1.5")(
        np.array([1.0, 2.0]), np.zeros(2, bool), np.ones(2, bool)
    )
    assert flags.tolist() == [False, True]
    with pytest.raises(ValueError, match="time_out"):
        success_function("fast")


def test_gym_ppo_trains_on_a_gymnasium_env_and_evaluates_to_json(tmp_path):
    from gear_sonic.train_agent_trl import run_training
    from scripts.evaluate_policy import main as evaluate_main

    cfg = compose_config(
        "+exp=gym/ppo",
        "gym.env_id=InvertedPendulum-v5",
        "num_envs=2",
        "algo.config.num_steps_per_env=16",
        "algo.config.num_mini_batches=2",
        "algo.config.num_learning_epochs=1",
        "algo.config.num_learning_iterations=1",
        f"experiment_dir={tmp_path / 'exp'}",
    )
    exp_dir = run_training(cfg)
    assert (exp_dir / "last.pt").is_file() and (exp_dir / "metrics.csv").is_file()
    output = tmp_path / "eval.json"
    assert (
        evaluate_main([str(exp_dir), "--episodes", "3", "--num-envs", "2", "--output", str(output)])
        == 0
    )
    result = json.loads(output.read_text())
    assert result["num_episodes"] == 3 and len(result["returns"]) == 3
    for key in (
        "mean_return",
        "std_return",
        "success_rate",
        "mean_length",
        "deterministic",
        "success_criterion",
        "checkpoint",
    ):
        assert key in result
    bad = compose_config(
        "+exp=gym/ppo",
        "gym.env_id=NoSuchEnv-v9",
        "num_envs=2",
        "algo.config.num_mini_batches=2",
        f"experiment_dir={tmp_path / 'bad'}",
    )
    with pytest.raises(ValueError, match="gym.env_id='NoSuchEnv-v9'"):
        run_training(bad)


def test_benchmark_learning_prints_the_ratio_last(capsys):
    from scripts.benchmark_learning import main

    assert (
        main(
            [
                "--steps",
                "32",
                "--seeds",
                "0",
                "--num-envs",
                "2",
                "--rollout",
                "16",
                "--eval-episodes",
                "2",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("ratio ours/sb3: ") and float(lines[-1].split(": ")[1]) > 0
    assert lines[-2].startswith("final return (mean over 1 seeds): ours ")
