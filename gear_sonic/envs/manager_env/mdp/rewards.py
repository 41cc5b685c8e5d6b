"""Reward terms of the tracking task (REFERENCE section 6): exp(-error / std^2) kernels.

Relative body terms compare the robot with the reference moved onto it (anchor xy and heading
from the robot), so they score the pose, not the global drift that the anchor terms score.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from mjlab.managers.scene_entity_config import SceneEntityCfg

from gear_sonic.envs.manager_env.mdp.commands import tracking_command
from gear_sonic.envs.manager_env.mdp.rotation_math import quat_angle_between

if TYPE_CHECKING:
    from mjlab.envs import ManagerBasedRlEnv


def tracking_anchor_pos_exp(env: ManagerBasedRlEnv, command_name: str, std: float) -> torch.Tensor:
    cmd = tracking_command(env, command_name)
    error = torch.sum(torch.square(cmd.ref_anchor_pos_w - cmd.robot_anchor_pos_w), dim=-1)
    return torch.exp(-error / std**2)


def tracking_anchor_ori_exp(env: ManagerBasedRlEnv, command_name: str, std: float) -> torch.Tensor:
    cmd = tracking_command(env, command_name)
    error = quat_angle_between(cmd.ref_anchor_quat_w, cmd.robot_anchor_quat_w) ** 2
    return torch.exp(-error / std**2)


def tracking_relative_body_pos_exp(
    env: ManagerBasedRlEnv, command_name: str, std: float
) -> torch.Tensor:
    cmd = tracking_command(env, command_name)
    error = torch.sum(torch.square(cmd.ref_body_pos_relative_w - cmd.robot_body_pos_w), dim=-1)
    return torch.exp(-error.mean(-1) / std**2)


def tracking_relative_body_ori_exp(
    env: ManagerBasedRlEnv, command_name: str, std: float
) -> torch.Tensor:
    cmd = tracking_command(env, command_name)
    error = quat_angle_between(cmd.ref_body_quat_relative_w, cmd.robot_body_quat_w) ** 2
    return torch.exp(-error.mean(-1) / std**2)


def tracking_body_linvel_exp(env: ManagerBasedRlEnv, command_name: str, std: float) -> torch.Tensor:
    cmd = tracking_command(env, command_name)
    error = torch.sum(torch.square(cmd.ref_body_lin_vel_w - cmd.robot_body_lin_vel_w), dim=-1)
    return torch.exp(-error.mean(-1) / std**2)


def tracking_body_angvel_exp(env: ManagerBasedRlEnv, command_name: str, std: float) -> torch.Tensor:
    cmd = tracking_command(env, command_name)
    error = torch.sum(torch.square(cmd.ref_body_ang_vel_w - cmd.robot_body_ang_vel_w), dim=-1)
    return torch.exp(-error.mean(-1) / std**2)


def tracking_vr_3point_local_exp(
    env: ManagerBasedRlEnv, command_name: str, std: float
) -> torch.Tensor:
    """VR points (head, hands) in each side's own anchor frame: what a VR teleoperator sees."""
    cmd = tracking_command(env, command_name)
    robot = cmd.vr_points_in_anchor_frame(cmd.robot_body_pos_w, cmd.robot_body_quat_w)
    error = torch.sum(torch.square(cmd.ref_vr_points_b - robot), dim=-1).mean(-1)
    return torch.exp(-error / std**2)


def undesired_contacts(env: ManagerBasedRlEnv, sensor_name: str, threshold: float) -> torch.Tensor:
    """Number of watched bodies whose net contact force exceeds `threshold` newtons."""
    force = env.scene[sensor_name].data.force  # (N, bodies, 3)
    return (torch.norm(force, dim=-1) > threshold).float().sum(-1)


def anti_shake_ang_vel(
    env: ManagerBasedRlEnv, threshold: float, asset_cfg: SceneEntityCfg
) -> torch.Tensor:
    """Mean relu(|w| - threshold)^2 over the given bodies: penalises jitter, not motion."""
    ang_vel = env.scene[asset_cfg.name].data.body_link_ang_vel_w[:, asset_cfg.body_ids]
    excess = torch.relu(torch.norm(ang_vel, dim=-1) - threshold)
    return torch.square(excess).mean(-1)
