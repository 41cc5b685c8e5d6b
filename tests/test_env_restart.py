"""Envs placed on a clip outside a step, or restarted on a new resident set, start in step.

A kinematic replay (the robot written onto the clip every step, on its own clock) must match
the command's reference from frame 0: any frame the reference lags shows up as millimetres.
"""

from __future__ import annotations

import pytest
import torch

from gear_sonic.envs import create_manager_env
from gear_sonic.eval.metrics import mpjpe_g, mpjpe_l
from tests.conftest import EXACT_RESET, RELEASE_PRESET, SAMPLE_MOTIONS, compose_config


@pytest.fixture(scope="module")
def walking_env():
    clip = SAMPLE_MOTIONS / "run_jog.npz"  # fast enough that one frame of lag is centimetres
    cfg = compose_config(
        RELEASE_PRESET, *EXACT_RESET, f"manager_env.commands.motion.motion_file={clip}"
    )
    env = create_manager_env(cfg, device="cpu", num_envs=2)
    yield env
    env.close()


def write_clip_state(wrapper, slots: torch.Tensor, frames: torch.Tensor) -> None:
    """Put every robot exactly on the clip at `frames` (root and joints), then update kinematics."""
    cmd = wrapper.command()
    state = cmd.motion.state_at_frames(slots, frames)
    origins = wrapper.env.scene.env_origins
    root = torch.cat([state.body_pos_w[:, 0] + origins, state.body_quat_w[:, 0],
                      state.body_lin_vel_w[:, 0], state.body_ang_vel_w[:, 0]], dim=-1)  # fmt: skip
    cmd.robot.write_joint_state_to_sim(state.joint_pos, state.joint_vel)
    cmd.robot.write_root_state_to_sim(root)
    wrapper.env.sim.forward()


def test_kinematic_replay_after_start_clips_tracks_from_the_first_frame(walking_env):
    wrapper, cmd = walking_env, walking_env.command()
    envs = torch.arange(wrapper.num_envs)
    slots = torch.zeros_like(envs)
    first = torch.tensor([0, 150])  # env 0 from the clip start, env 1 from mid-run
    cmd.start_clips(envs, slots, first)
    steps = 60
    ref, robot = [cmd.ref_body_pos_w.clone()], [cmd.robot_body_pos_w.clone()]
    failed = torch.zeros(wrapper.num_envs, dtype=torch.bool)
    for step in range(1, steps + 1):
        _, _, done, extras = wrapper.step(wrapper.reference_actions())
        failed |= extras["terminated"]
        assert not done.any(), f"step {step}: an env ended during the replay"
        assert torch.equal(cmd.frame, first + step), "the reference must advance every step"
        write_clip_state(wrapper, slots, first + step)
        ref.append(cmd.ref_body_pos_w.clone())
        robot.append(cmd.robot_body_pos_w.clone())
    ref, robot = torch.stack(ref), torch.stack(robot)  # (T, N, B, 3)
    success = (~failed).float().mean().item()
    assert success == 1.0
    for i in range(wrapper.num_envs):
        assert mpjpe_g(ref[:2, i], robot[:2, i]) < 1.0  # frames 0 and 1
        assert mpjpe_g(ref[:, i], robot[:, i]) < 1.0
        assert mpjpe_l(ref[:, i], robot[:, i], cmd.anchor_index) < 1.0
    # The replay can fail: the same robots scored against the reference one frame late.
    assert mpjpe_g(ref[:-1, 1], robot[1:, 1]) > 5.0


def test_env_reset_starts_on_the_sampled_frame_and_advances_at_the_first_step(walking_env):
    wrapper, cmd = walking_env, walking_env.command()
    wrapper.reset()
    start = cmd.frame.clone()
    wrapper.step(wrapper.reference_actions())
    assert torch.equal(cmd.frame, start + 1)


def test_resample_motions_restarts_episodes_and_observation_history(walking_env):
    wrapper, cmd = walking_env, walking_env.command()
    env = wrapper.env
    wrapper.reset()
    for _ in range(5):
        wrapper.step(
            wrapper.reference_actions() + 0.3 * torch.randn(wrapper.num_envs, wrapper.num_actions)
        )
    assert (env.episode_length_buf > 0).any()
    failures = cmd.sampler.failures.clone()
    env.termination_manager.terminated[:] = True  # a stale flag must not count the cut episodes

    wrapper.resample_motions()

    assert (env.episode_length_buf == 0).all()
    assert (env.action_manager.action == 0).all()
    torch.testing.assert_close(cmd.sampler.failures, failures)
    obs = wrapper.get_observations()["actor_obs"]
    offset = 0
    history = env.observation_manager.cfg["actor_obs"].history_length
    for name, (size,) in wrapper.term_layout["actor_obs"]:
        frames = obs[:, offset : offset + size].reshape(wrapper.num_envs, history, -1)
        # Fresh history: every slot holds the first observation after the restart.
        torch.testing.assert_close(frames, frames[:, -1:].expand_as(frames), msg=name)
        offset += size
    # The next step advances every env from its new start frame.
    start = cmd.frame.clone()
    wrapper.step(wrapper.reference_actions())
    assert torch.equal(cmd.frame, start + 1)
