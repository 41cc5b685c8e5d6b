"""Observation terms of the tracking task (REFERENCE section 3).

Every term reads the reference cached by the tracking command. Future-frame terms keep one row
per frame: `*_nonflat` terms return (N, frames, D); the flat variants are the same rows
concatenated frame after frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from mjlab.utils.lab_api.math import (
    matrix_from_quat,
    quat_apply,
    quat_apply_inverse,
    quat_inv,
    quat_mul,
)

from gear_sonic.envs.manager_env.mdp.commands import tracking_command
from gear_sonic.utils.rotations import rotation_6d, rotation_6d_from_matrix, smpl_root_rotation

if TYPE_CHECKING:
    from mjlab.envs import ManagerBasedRlEnv

    from gear_sonic.envs.manager_env.mdp.commands import TrackingCommand


# ---------------------------------------------------------------- encoder routing
def encoder_index(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Multi-hot over the encoders active in this episode (order of encoder_sample_probs)."""
    return tracking_command(env, command_name).encoder_mask


# ---------------------------------------------------------------- G1 reference
def command_multi_future_nonflat(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Future reference joint positions and velocities, (N, frames, 2 J)."""
    cmd = tracking_command(env, command_name)
    return torch.cat([cmd.future_joint_pos, cmd.future_joint_vel], dim=-1)


def command_multi_future(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    return command_multi_future_nonflat(env, command_name).flatten(1)


def command_multi_future_lower_body(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Future lower-body joint positions and velocities, flattened frame by frame."""
    cmd = tracking_command(env, command_name)
    ids = cmd.lower_body_joint_ids
    frames = torch.cat([cmd.future_joint_pos[:, :, ids], cmd.future_joint_vel[:, :, ids]], dim=-1)
    return frames.flatten(1)


def motion_anchor_pos_b(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Reference anchor position in the robot anchor frame."""
    cmd = tracking_command(env, command_name)
    pos, quat = cmd.robot_anchor_pos_w, cmd.robot_anchor_quat_w
    return quat_apply_inverse(quat, cmd.ref_anchor_pos_w - pos)


def motion_anchor_ori_b(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Reference anchor orientation relative to the robot anchor, as 6-D rotation."""
    cmd = tracking_command(env, command_name)
    quat = cmd.robot_anchor_quat_w
    return rotation_6d(quat_mul(quat_inv(quat), cmd.ref_anchor_quat_w))


def motion_anchor_ori_b_mf_nonflat(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Future reference anchor orientations relative to the current robot anchor, (N, frames, 6)."""
    cmd = tracking_command(env, command_name)
    quat = cmd.robot_anchor_quat_w
    future = cmd.future_anchor_quat_w
    relative = quat_mul(quat_inv(quat)[:, None, :].expand_as(future), future)
    return rotation_6d(relative)


def robot_body_pos_b(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Tracked robot body positions in the robot anchor frame, flattened."""
    cmd = tracking_command(env, command_name)
    pos, quat = cmd.robot_anchor_pos_w, cmd.robot_anchor_quat_w
    rel = cmd.robot_body_pos_w - pos[:, None, :]
    return quat_apply_inverse(quat[:, None, :].expand(-1, rel.shape[1], -1), rel).flatten(1)


def robot_body_ori_b(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Tracked robot body orientations in the robot anchor frame, 6-D each, flattened."""
    cmd = tracking_command(env, command_name)
    quat = cmd.robot_anchor_quat_w
    bodies = cmd.robot_body_quat_w
    return rotation_6d(quat_mul(quat_inv(quat)[:, None, :].expand_as(bodies), bodies)).flatten(1)


# ---------------------------------------------------------------- VR 3-point (teleop)
def vr_points_w(cmd: TrackingCommand, body_pos: torch.Tensor, body_quat: torch.Tensor) -> torch.Tensor:
    """World positions of the VR points given tracked body poses (N, B, 3/4) -> (N, 3, 3)."""
    quat = body_quat[:, cmd.vr_index]
    offsets = cmd.vr_offsets[None].expand(quat.shape[0], -1, -1)
    return body_pos[:, cmd.vr_index] + quat_apply(quat, offsets)


def vr_3point_local_target(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Reference VR point positions in the reference anchor frame, (N, 9)."""
    cmd = tracking_command(env, command_name)
    points = vr_points_w(cmd, cmd.ref_body_pos_w, cmd.ref_body_quat_w)
    anchor_quat = cmd.ref_anchor_quat_w[:, None, :].expand(-1, points.shape[1], -1)
    return quat_apply_inverse(anchor_quat, points - cmd.ref_anchor_pos_w[:, None, :]).flatten(1)


def vr_3point_local_orn_target(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Reference VR body orientations relative to the reference anchor, quaternions (N, 12)."""
    cmd = tracking_command(env, command_name)
    quats = cmd.ref_body_quat_w[:, cmd.vr_index]
    anchor = cmd.ref_anchor_quat_w[:, None, :].expand_as(quats)
    return quat_mul(quat_inv(anchor), quats).flatten(1)


# ---------------------------------------------------------------- SMPL keypoints
def smpl_joints_multi_future_local_nonflat(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Future SMPL keypoints, each frame in its own SMPL root frame, (N, frames, 72)."""
    joints = tracking_command(env, command_name).smpl_future_joints_w  # (N, F, 24, 3)
    rot = smpl_root_rotation(joints)  # (N, F, 3, 3)
    rel = joints - joints[:, :, :1, :]
    local = torch.einsum("nfji,nfkj->nfki", rot, rel)  # R^T (p - root)
    return local.flatten(2)


def smpl_root_ori_b_multi_future(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Future SMPL root orientations relative to the robot anchor, 6-D, (N, frames, 6)."""
    cmd = tracking_command(env, command_name)
    quat = cmd.robot_anchor_quat_w
    robot_rot = matrix_from_quat(quat)  # (N, 3, 3)
    smpl_rot = smpl_root_rotation(cmd.smpl_future_joints_w)  # (N, F, 3, 3)
    relative = torch.einsum("nji,nfjk->nfik", robot_rot, smpl_rot)
    return rotation_6d_from_matrix(relative)


def joint_pos_multi_future_wrist_for_smpl(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Wrist joint targets at the SMPL future frames (SMPL has no wrist twist), (N, frames, 6)."""
    return tracking_command(env, command_name).smpl_future_wrist_pos

