"""Termination terms of the tracking task (REFERENCE section 7).

Height thresholds are "adaptive": while the reference anchor is below `low_ref_height` (lying,
crawling) the tolerance widens to `low_threshold`, because height errors there are not falls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gear_sonic.envs.manager_env.mdp.commands import tracking_command
from gear_sonic.envs.manager_env.mdp.rotation_math import quat_angle_between

if TYPE_CHECKING:
    from mjlab.envs import ManagerBasedRlEnv

    from gear_sonic.envs.manager_env.mdp.commands import TrackingCommand


def _height_threshold(cmd: TrackingCommand, threshold: float, low_ref_height: float | None, low_threshold: float) -> torch.Tensor:
    limit = torch.full((cmd.num_envs,), threshold, device=cmd.device)
    if low_ref_height is not None:
        limit = torch.where(cmd.ref_anchor_height < low_ref_height, torch.full_like(limit, low_threshold), limit)
    return limit


def _body_index(cmd: TrackingCommand, body_names: list[str] | tuple[str, ...]) -> list[int]:
    missing = [n for n in body_names if n not in cmd.body_names]
    if missing:
        raise ValueError(f"bodies {missing} are not tracked by the motion command ({list(cmd.body_names)})")
    return [cmd.body_names.index(n) for n in body_names]


def anchor_height_error(
    env: ManagerBasedRlEnv,
    command_name: str,
    threshold: float,
    low_ref_height: float | None = None,
    low_threshold: float = 0.75,
) -> torch.Tensor:
    cmd = tracking_command(env, command_name)
    error = torch.abs(cmd.ref_anchor_pos_w[:, 2] - cmd.robot_anchor_pos_w[:, 2])
    return error > _height_threshold(cmd, threshold, low_ref_height, low_threshold)


def anchor_ori_error(env: ManagerBasedRlEnv, command_name: str, threshold: float) -> torch.Tensor:
    """Squared rotation angle (rad^2) between reference and robot anchor above `threshold`."""
    cmd = tracking_command(env, command_name)
    angle = quat_angle_between(cmd.ref_anchor_quat_w, cmd.robot_anchor_quat_w)
    return angle**2 > threshold


def body_height_error(
    env: ManagerBasedRlEnv,
    command_name: str,
    threshold: float,
    body_names: list[str],
    low_ref_height: float | None = None,
    low_threshold: float = 0.75,
) -> torch.Tensor:
    """Any listed body's height error (against the re-anchored reference) above the threshold."""
    cmd = tracking_command(env, command_name)
    ids = _body_index(cmd, body_names)
    error = torch.abs(cmd.ref_body_pos_relative_w[:, ids, 2] - cmd.robot_body_pos_w[:, ids, 2])
    limit = _height_threshold(cmd, threshold, low_ref_height, low_threshold)
    return torch.any(error > limit[:, None], dim=-1)


def body_pos_error(env: ManagerBasedRlEnv, command_name: str, threshold: float, body_names: list[str]) -> torch.Tensor:
    """Any listed body's 3-D error (against the re-anchored reference) above the threshold."""
    cmd = tracking_command(env, command_name)
    ids = _body_index(cmd, body_names)
    error = torch.norm(cmd.ref_body_pos_relative_w[:, ids] - cmd.robot_body_pos_w[:, ids], dim=-1)
    return torch.any(error > threshold, dim=-1)


def motion_ended(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """The clip reached its last frame: a time-out (bootstrapped), not a failure."""
    return tracking_command(env, command_name).clip_ended
