"""Per-step tracking errors, averaged over episodes by mjlab's metrics manager (metres)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gear_sonic.envs.manager_env.mdp.commands import tracking_command

if TYPE_CHECKING:
    from mjlab.envs import ManagerBasedRlEnv


def body_pos_error_global(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Mean distance between reference and robot bodies in the world (g-MPJPE)."""
    cmd = tracking_command(env, command_name)
    return torch.norm(cmd.ref_body_pos_w - cmd.robot_body_pos_w, dim=-1).mean(-1)


def body_pos_error_local(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Mean distance of anchor-relative body positions (l-MPJPE, drift removed)."""
    cmd = tracking_command(env, command_name)
    a = cmd.anchor_index
    ref = cmd.ref_body_pos_w - cmd.ref_body_pos_w[:, a : a + 1]
    robot = cmd.robot_body_pos_w - cmd.robot_body_pos_w[:, a : a + 1]
    return torch.norm(ref - robot, dim=-1).mean(-1)


def joint_pos_error(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Mean absolute joint angle error (rad)."""
    cmd = tracking_command(env, command_name)
    return torch.abs(cmd.ref_joint_pos - cmd.robot_joint_pos).mean(-1)
