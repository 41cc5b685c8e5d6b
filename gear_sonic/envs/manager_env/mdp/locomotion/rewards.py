"""Velocity-task rewards in the legged_gym / Isaac Lab form users know.

Velocities are the root link's, in the base frame. The tracking kernels are exp(-err^2 / std^2);
the penalties are plain sums of squares (weights are negative in the YAML). The contact
penalty is the tracking task's `undesired_contacts` (mdp/rewards.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from mjlab.managers.scene_entity_config import SceneEntityCfg

if TYPE_CHECKING:
    from mjlab.envs import ManagerBasedRlEnv

_ROBOT = SceneEntityCfg("robot")


def track_lin_vel_xy_exp(
    env: ManagerBasedRlEnv, std: float, command_name: str, asset_cfg: SceneEntityCfg = _ROBOT
) -> torch.Tensor:
    """exp(-|v_xy - v_xy_cmd|^2 / std^2): planar base velocity against the command."""
    command = env.command_manager.get_command(command_name)
    lin_vel_b = env.scene[asset_cfg.name].data.root_link_lin_vel_b
    error = torch.sum(torch.square(command[:, :2] - lin_vel_b[:, :2]), dim=1)
    return torch.exp(-error / std**2)


def track_ang_vel_z_exp(
    env: ManagerBasedRlEnv, std: float, command_name: str, asset_cfg: SceneEntityCfg = _ROBOT
) -> torch.Tensor:
    """exp(-(w_z - w_z_cmd)^2 / std^2): yaw rate against the command."""
    command = env.command_manager.get_command(command_name)
    ang_vel_b = env.scene[asset_cfg.name].data.root_link_ang_vel_b
    return torch.exp(-torch.square(command[:, 2] - ang_vel_b[:, 2]) / std**2)


def lin_vel_z_l2(env: ManagerBasedRlEnv, asset_cfg: SceneEntityCfg = _ROBOT) -> torch.Tensor:
    """Vertical base velocity squared (bouncing)."""
    return torch.square(env.scene[asset_cfg.name].data.root_link_lin_vel_b[:, 2])


def ang_vel_xy_l2(env: ManagerBasedRlEnv, asset_cfg: SceneEntityCfg = _ROBOT) -> torch.Tensor:
    """Roll and pitch rates squared (wobbling)."""
    ang_vel_b = env.scene[asset_cfg.name].data.root_link_ang_vel_b
    return torch.sum(torch.square(ang_vel_b[:, :2]), dim=1)
