"""Locomotion MDP terms on hand-made states: each reward, the privileged observations, and the
velocity command's sampling (ranges, standing envs, heading envs, resampling)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from mjlab.envs import mdp as mjlab_mdp
from mjlab.managers.scene_entity_config import SceneEntityCfg
from mjlab.tasks.velocity import mdp as velocity_mdp

from gear_sonic.envs.manager_env.mdp import rewards as tracking_rewards
from gear_sonic.envs.manager_env.mdp.locomotion import observations, rewards
from gear_sonic.envs.manager_env.mdp.locomotion.commands import (
    VelocityCommandError,
    velocity_command_cfg,
)

ROBOT = SceneEntityCfg("robot")


class FakeCommands:
    def __init__(self, command):
        self.command = command

    def get_command(self, name):
        assert name == "twist"
        return self.command


def fake_env(lin_vel_b, ang_vel_b, command=None, **scene):
    data = SimpleNamespace(
        root_link_lin_vel_b=torch.tensor(lin_vel_b, dtype=torch.float32),
        root_link_ang_vel_b=torch.tensor(ang_vel_b, dtype=torch.float32),
    )
    return SimpleNamespace(
        scene={"robot": SimpleNamespace(data=data), **scene},
        command_manager=FakeCommands(torch.tensor(command or [[0.0, 0.0, 0.0]] * len(lin_vel_b))),
        num_envs=len(lin_vel_b),
    )


def test_velocity_tracking_rewards_are_one_on_target_and_fall_with_the_error():
    env = fake_env(
        lin_vel_b=[[1.0, 0.5, 0.3], [0.0, 0.0, 0.0]],
        ang_vel_b=[[0.4, -0.2, 0.8], [0.0, 0.0, 0.0]],
        command=[[1.0, 0.5, 0.8], [1.0, 0.5, 0.8]],
    )
    lin = rewards.track_lin_vel_xy_exp(env, std=0.5, command_name="twist")
    ang = rewards.track_ang_vel_z_exp(env, std=0.5, command_name="twist")
    # Env 0 tracks exactly (z velocity and roll/pitch rates are not part of these terms).
    assert torch.allclose(lin, torch.tensor([1.0, math.exp(-(1.0 + 0.25) / 0.25)]))
    assert torch.allclose(ang, torch.tensor([1.0, math.exp(-0.64 / 0.25)]))


def test_base_motion_penalties_are_squares_of_the_unwanted_components():
    env = fake_env(lin_vel_b=[[1.0, 2.0, -0.3]], ang_vel_b=[[0.2, -0.4, 5.0]])
    assert rewards.lin_vel_z_l2(env).item() == pytest.approx(0.09)
    assert rewards.ang_vel_xy_l2(env).item() == pytest.approx(0.04 + 0.16)


def test_undesired_contacts_counts_bodies_above_the_threshold():
    force = torch.tensor([[[0.0, 0.0, 5.0], [0.0, 0.0, 0.5], [3.0, 4.0, 0.0], [0, 0, 0]]])
    env = fake_env(
        [[0, 0, 0]],
        [[0, 0, 0]],
        undesired_contacts=SimpleNamespace(data=SimpleNamespace(force=force)),
    )
    assert tracking_rewards.undesired_contacts(env, "undesired_contacts", 1.0).item() == 2.0


def test_mjlab_penalties_the_presets_use_on_hand_made_states():
    data = SimpleNamespace(
        projected_gravity_b=torch.tensor([[0.0, 0.0, -1.0], [0.6, 0.0, -0.8]]),
        actuator_force=torch.tensor([[1.0, -2.0], [0.0, 0.0]]),
        joint_acc=torch.tensor([[10.0, 0.0], [0.0, -1.0]]),
        joint_pos=torch.tensor([[0.0, 1.2], [-1.5, 0.0]]),
        soft_joint_pos_limits=torch.tensor([[[-1.0, 1.0], [-1.0, 1.0]]] * 2),
    )
    env = SimpleNamespace(scene={"robot": SimpleNamespace(data=data)})
    all_joints = SceneEntityCfg("robot", joint_ids=slice(None), actuator_ids=slice(None))
    assert torch.allclose(mjlab_mdp.flat_orientation_l2(env), torch.tensor([0.0, 0.36]))
    assert torch.allclose(mjlab_mdp.joint_torques_l2(env, all_joints), torch.tensor([5.0, 0.0]))
    assert torch.allclose(mjlab_mdp.joint_acc_l2(env, all_joints), torch.tensor([100.0, 1.0]))
    assert torch.allclose(mjlab_mdp.joint_pos_limits(env, all_joints), torch.tensor([0.2, 0.5]))
    actions = SimpleNamespace(
        action=torch.tensor([[1.0, 1.0]]), prev_action=torch.tensor([[0.0, 3.0]])
    )
    assert mjlab_mdp.action_rate_l2(SimpleNamespace(action_manager=actions)).item() == 5.0


def test_feet_air_time_rewards_swings_in_range_only_while_commanded_to_move():
    air = torch.tensor([[0.0, 0.1, 0.3, 0.7], [0.0, 0.1, 0.3, 0.7]])
    sensor = SimpleNamespace(data=SimpleNamespace(current_air_time=air))
    env = fake_env(
        [[0, 0, 0]] * 2,
        [[0, 0, 0]] * 2,
        command=[[1.0, 0, 0], [0.0, 0, 0]],
        feet_ground_contact=sensor,
    )
    env.extras = {"log": {}}
    reward = velocity_mdp.feet_air_time(env, "feet_ground_contact", 0.05, 0.5, "twist", 0.1)
    assert reward.tolist() == [2.0, 0.0]


def test_privileged_observations_read_each_envs_randomised_model():
    indexing = SimpleNamespace(geom_ids=torch.tensor([7, 8, 9]), body_ids=torch.tensor([1, 2]))
    friction = torch.zeros(2, 10, 3)
    friction[0, 8, 0], friction[1, 8, 0] = 0.4, 1.1
    mass = torch.tensor([[0.0, 6.9, 1.0], [0.0, 9.0, 1.0]])
    env = SimpleNamespace(
        scene={"robot": SimpleNamespace(indexing=indexing)},
        sim=SimpleNamespace(model=SimpleNamespace(geom_friction=friction, body_mass=mass)),
        num_envs=2,
    )
    foot = SceneEntityCfg("robot", geom_ids=[1])
    base = SceneEntityCfg("robot", body_ids=[0])
    assert observations.geom_friction(env, foot).tolist() == [
        [pytest.approx(0.4)],
        [pytest.approx(1.1)],
    ]
    assert observations.body_mass(env, base).tolist() == [[pytest.approx(6.9)], [9.0]]
    # A field nobody randomised holds one row for all envs.
    env.sim.model.body_mass = mass[:1]
    assert observations.body_mass(env, base).shape == (2, 1)


def command_env(num_envs: int):
    data = SimpleNamespace(
        heading_w=torch.zeros(num_envs),
        root_link_lin_vel_b=torch.zeros(num_envs, 3),
        root_link_ang_vel_b=torch.zeros(num_envs, 3),
    )
    return SimpleNamespace(
        num_envs=num_envs, device="cpu", step_dt=0.02, scene={"robot": SimpleNamespace(data=data)}
    )


TWIST = {
    "resampling_time_range": [3.0, 8.0],
    "rel_standing_envs": 0.25,
    "rel_heading_envs": 0.3,
    "heading_command": True,
    "heading_control_stiffness": 0.5,
    "ranges": {
        "lin_vel_x": [-1.0, 1.0],
        "lin_vel_y": [-0.5, 0.5],
        "ang_vel_z": [-0.5, 0.5],
        "heading": [-3.14, 3.14],
    },
}


def test_velocity_command_samples_ranges_standing_and_heading_envs():
    torch.manual_seed(0)
    n = 4000
    env = command_env(n)
    term = velocity_command_cfg(TWIST, "manager_env.commands.twist").build(env)
    term.reset(torch.arange(n))
    term.compute(dt=0.02)
    cmd = term.command
    standing = term.is_standing_env
    assert 0.22 < standing.float().mean() < 0.28
    assert torch.all(cmd[standing] == 0.0)
    moving = cmd[~standing]
    assert moving[:, 0].abs().max() <= 1.0 and moving[:, 1].abs().max() <= 0.5
    assert moving[:, 0].std() > 0.5  # spread over the range, not a constant
    heading = term.is_heading_env & ~standing
    assert 0.25 < heading.float().mean() / (~standing).float().mean() < 0.35
    # Heading envs steer: yaw rate = stiffness x heading error (heading is 0), clipped.
    expected = (0.5 * term.heading_target[heading]).clamp(-0.5, 0.5)
    assert torch.allclose(cmd[heading, 2], expected, atol=1e-5)


def test_velocity_command_resamples_after_its_time():
    torch.manual_seed(1)
    env = command_env(64)
    term = velocity_command_cfg(TWIST, "twist").build(env)
    term.reset(torch.arange(64))
    term.compute(dt=0.02)
    first = term.vel_command_b.clone()
    term.compute(dt=2.0)  # still within 3 s for everyone
    assert torch.equal(term.vel_command_b[:, :2], first[:, :2])
    term.compute(dt=6.5)  # past 8 s for everyone
    assert not torch.equal(term.vel_command_b[:, :2], first[:, :2])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type_": 1, "ranges": TWIST["ranges"]}, r"unknown keys \['type_'\]"),
        ({"heading_command": True}, r"twist.ranges is required"),
        (
            {"ranges": {"lin_vel_x": [1.0, -1.0], "lin_vel_y": [0, 0], "ang_vel_z": [0, 0]}},
            r"twist.ranges.lin_vel_x: min 1.0 is above max -1.0",
        ),
        ({"ranges": {"lin_x": [0, 1]}}, r"twist.ranges: unknown keys \['lin_x'\]"),
    ],
)
def test_bad_velocity_command_entries_name_the_key(entry, message):
    with pytest.raises(VelocityCommandError, match=message):
        velocity_command_cfg(entry, "manager_env.commands.twist")
