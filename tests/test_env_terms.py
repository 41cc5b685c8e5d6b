"""MDP terms read the tracking command through its public views; contact penalty sees the body."""

from __future__ import annotations

import math

import pytest
import torch

from gear_sonic.envs import create_manager_env
from gear_sonic.envs.manager_env.mdp import rewards
from gear_sonic.envs.manager_env.mdp.commands import tracking_command
from tests.conftest import EXACT_RESET, RELEASE_PRESET, compose_config


@pytest.fixture(scope="module")
def standing_env(standing_clip):
    cfg = compose_config(
        RELEASE_PRESET, *EXACT_RESET, f"manager_env.commands.motion.motion_file={standing_clip}"
    )
    env = create_manager_env(cfg, device="cpu", num_envs=2)
    yield env
    env.close()


def test_tracking_command_names_a_wrong_command(standing_env):
    env = standing_env.env
    assert tracking_command(env, "motion") is standing_env.command()
    with pytest.raises(KeyError):
        tracking_command(env, "no_such_command")


def test_anchor_views_are_the_anchor_rows(standing_env):
    cmd = standing_env.command()
    standing_env.reset()
    a = cmd.anchor_index
    torch.testing.assert_close(cmd.ref_anchor_pos_w, cmd.ref_body_pos_w[:, a])
    torch.testing.assert_close(cmd.ref_anchor_quat_w, cmd.ref_body_quat_w[:, a])
    torch.testing.assert_close(cmd.robot_anchor_pos_w, cmd.robot_body_pos_w[:, a])
    torch.testing.assert_close(cmd.robot_anchor_quat_w, cmd.robot_body_quat_w[:, a])
    origins = standing_env.env.scene.env_origins
    torch.testing.assert_close(cmd.ref_anchor_height, cmd.ref_anchor_pos_w[:, 2] - origins[:, 2])
    torch.testing.assert_close(
        cmd.future_joint_state[:, 0], torch.cat([cmd.ref_joint_pos, cmd.ref_joint_vel], -1)
    )


def test_undesired_contacts_count_bodies_other_than_feet_and_hands(standing_env):
    env = standing_env.env
    standing_env.reset()
    penalty = lambda: rewards.undesired_contacts(
        env, sensor_name="undesired_contacts", threshold=1.0
    )
    for _ in range(4):
        env.sim.step()
    env.scene.update(dt=env.physics_dt)
    assert (penalty() == 0).all()  # standing: only the feet touch the ground
    robot = env.scene["robot"]
    pose = robot.data.root_link_pose_w.clone()
    pose[:, 2] = 0.2  # lying on its back just above the floor, then dropped for 0.3 s
    pose[:, 3:7] = torch.tensor([math.cos(math.pi / 4), 0.0, -math.sin(math.pi / 4), 0.0])
    robot.write_root_link_pose_to_sim(pose)
    for _ in range(60):
        env.sim.step()
    env.scene.update(dt=env.physics_dt)
    assert (penalty() >= 1).all()


def test_fused_quaternion_helpers_match_mjlab():
    from mjlab.utils.lab_api.math import (
        matrix_from_quat,
        quat_apply,
        quat_error_magnitude,
        quat_inv,
        quat_mul,
        yaw_quat,
    )

    from gear_sonic.envs.manager_env.mdp.rotation_math import (
        quat_angle_between,
        quat_conj_mul,
        relative_yaw_half_angle,
        rotation_6d_from_quat,
        yaw_rotate,
    )

    gen = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(500, 4, generator=gen), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(500, 4, generator=gen), dim=-1)
    b[:5], b[5:10] = a[:5], -a[5:10]  # same rotation (both signs): angle 0
    torch.testing.assert_close(quat_conj_mul(a, b), quat_mul(quat_inv(a), b))
    torch.testing.assert_close(
        quat_angle_between(a, b), quat_error_magnitude(a, b), atol=2e-6, rtol=1e-5
    )
    assert quat_angle_between(a, b)[:10].abs().max() < 1e-3
    torch.testing.assert_close(
        rotation_6d_from_quat(a), matrix_from_quat(a)[..., :2].reshape(-1, 6)
    )
    # Reference bodies turned by the robot's heading relative to the reference (re-anchoring).
    bodies, pos = b[:, None].expand(-1, 3, -1), torch.randn(500, 3, 3, generator=gen)
    delta = yaw_quat(quat_mul(a, quat_inv(b)))[:, None].expand(-1, 3, -1)
    new_pos, new_quat = yaw_rotate(*relative_yaw_half_angle(a, b), pos, bodies)
    torch.testing.assert_close(new_pos, quat_apply(delta, pos), atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(new_quat, quat_mul(delta, bodies), atol=2e-6, rtol=1e-5)
