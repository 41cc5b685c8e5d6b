"""go2_velocity_cpu through train_agent_trl's run_training: 2 iterations write the experiment dir
(config, checkpoints, metrics.csv with the velocity-task reward terms)."""

from __future__ import annotations

import csv

import pytest
import torch

from gear_sonic.checkpoint import load_checkpoint
from gear_sonic.envs import create_manager_env
from gear_sonic.train_agent_trl import run_training
from tests.conftest import compose_config

GO2_CPU_PRESET = "+exp=manager/locomotion/go2_velocity_cpu"


def test_go2_velocity_cpu_two_iterations_write_their_files(tmp_path):
    cfg = compose_config(
        GO2_CPU_PRESET,
        "num_envs=4",
        "algo.config.num_mini_batches=2",
        "algo.config.num_steps_per_env=8",
        "algo.config.num_learning_epochs=1",
        "algo.config.num_learning_iterations=2",
        "callbacks.model_save.save_interval=1",
        "callbacks.model_save.last_interval=1",
        "manager_env.config.episode_length_s=0.1",  # 5-step episodes: every rollout ends some
        f"experiment_dir={tmp_path / 'exp'}",
    )
    exp_dir = run_training(cfg)
    for name in ("config.yaml", "meta.yaml", "last.pt", "model_step_000002.pt", "metrics.csv"):
        assert (exp_dir / name).is_file(), name
    with (exp_dir / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == [1, 2]
    for term in ("track_lin_vel_xy_exp", "track_ang_vel_z_exp", "feet_air_time", "lin_vel_z_l2"):
        assert f"Episode_Reward/{term}" in rows[0], term
    assert "Episode_Termination/base_contact" in rows[0]
    assert float(rows[0]["Episode_Termination/time_out"]) > 0.0
    state = load_checkpoint(exp_dir / "last.pt")
    first = state["actor"]["backbone.mlp.0.weight"]
    # actor_obs = 3 + 3 + 3 + 12 + 12 + 12 (proprio, command, last action) + 3 + 4 + 1 (privileged)
    assert first.shape == (512, 53) and torch.isfinite(first).all()


def test_go2_presets_train_with_plain_ppo_on_their_devices():
    gpu = compose_config("+exp=manager/locomotion/go2_velocity")
    cpu = compose_config(GO2_CPU_PRESET)
    for cfg in (gpu, cpu):
        assert cfg.trainer._target_.endswith("ppo_trainer.TRLPPOTrainer")
        assert "aux_losses" not in cfg and "bc_loss" not in cfg
        assert set(cfg.callbacks) == {"ddp_check", "model_save", "metrics_csv", "wandb"}
    assert gpu.num_envs == 4096 and gpu.manager_env.config.sim.backend == "warp"
    assert (
        cpu.num_envs == 64 and cpu.device == "cpu" and cpu.manager_env.config.sim.backend == "auto"
    )
    # Same env and networks: the CPU preset only resizes the run.
    assert gpu.manager_env.rewards == cpu.manager_env.rewards
    assert gpu.actor_critic == cpu.actor_critic


def test_go2_contact_sensors_see_feet_standing_and_the_base_lying():
    # Without the tilt termination, so that an upside-down robot ends by base contact only.
    cfg = compose_config(GO2_CPU_PRESET, "num_envs=2", "~manager_env.terminations.bad_orientation")
    env = create_manager_env(cfg, device="cpu", num_envs=2)
    try:
        mjlab_env, robot = env.env, env.env.scene["robot"]
        zeros = torch.zeros(2, env.num_actions)
        for _ in range(10):
            env.step(zeros)
        assert mjlab_env.scene["feet_ground_contact"].data.found.bool().all()
        assert not mjlab_env.scene["base_contact"].data.found.any()
        assert not mjlab_env.scene["undesired_contacts"].data.found.any()
        # Env 1 upside down just above the ground: its back lands on the base geoms.
        state = torch.cat(
            [robot.data.root_link_pos_w, robot.data.root_link_quat_w, torch.zeros(2, 6)], dim=1
        )
        state[1, 2], state[1, 3:7] = 0.07, torch.tensor([0.0, 1.0, 0.0, 0.0])
        robot.write_root_state_to_sim(state[1:], env_ids=torch.tensor([1], dtype=torch.int32))
        ended_by_base_contact = 0.0
        for _ in range(15):
            env.step(zeros)
            log = mjlab_env.extras.get("log", {})
            ended_by_base_contact += float(log.get("Episode_Termination/base_contact", 0.0))
        assert ended_by_base_contact == 1.0  # env 1 once; env 0 keeps standing
        assert int(mjlab_env.episode_length_buf[0]) == 25
    finally:
        env.close()


def test_random_initial_episode_length_spreads_the_first_time_outs():
    from types import SimpleNamespace

    from gear_sonic.trl.trainer import TRLPPOTrainer

    torch.manual_seed(0)
    env = SimpleNamespace(episode_length_buf=torch.zeros(512, dtype=torch.long),
                          max_episode_length=100)
    TRLPPOTrainer.randomize_episode_lengths(SimpleNamespace(env=env))
    buf = env.episode_length_buf
    assert buf.dtype == torch.long and int(buf.min()) >= 0 and int(buf.max()) < 100
    assert len(torch.unique(buf)) > 50  # spread, not one shared offset
    with pytest.raises(ValueError, match="random_initial_episode_length"):
        TRLPPOTrainer.randomize_episode_lengths(SimpleNamespace(env=object()))
