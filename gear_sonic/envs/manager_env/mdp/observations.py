"""Observation terms of the tracking task (REFERENCE section 3).

Every term reads the reference cached by the tracking command. Future-frame terms keep one row
per frame: `*_nonflat` terms return (N, frames, D); the flat variants are the same rows
concatenated frame after frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from mjlab.utils.lab_api.math import matrix_from_quat, quat_apply_inverse

from gear_sonic.envs.manager_env.mdp.commands import tracking_command
from gear_sonic.envs.manager_env.mdp.rotation_math import quat_conj_mul, rotation_6d_from_quat
from gear_sonic.utils.rotations import rotation_6d_from_matrix

if TYPE_CHECKING:
    from mjlab.envs import ManagerBasedRlEnv


# ---------------------------------------------------------------- encoder routing
def encoder_index(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Multi-hot over the encoders active in this episode (order of encoder_sample_probs)."""
    return tracking_command(env, command_name).encoder_mask


# ---------------------------------------------------------------- G1 reference
def command_multi_future_nonflat(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Future reference joint positions and velocities, (N, frames, 2 J)."""
    return tracking_command(env, command_name).future_joint_state


def command_multi_future(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    return tracking_command(env, command_name).future_joint_state.flatten(1)


def command_multi_future_lower_body(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Future lower-body joint positions and velocities, flattened frame by frame."""
    cmd = tracking_command(env, command_name)
    ids = cmd.lower_body_joint_ids
    frames = torch.cat([cmd.future_joint_pos[:, :, ids], cmd.future_joint_vel[:, :, ids]], dim=-1)
    return frames.flatten(1)


def motion_anchor_pos_b(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Reference anchor position in the robot anchor frame."""
    cmd = tracking_command(env, command_name)
    return quat_apply_inverse(
        cmd.robot_anchor_quat_w, cmd.ref_anchor_pos_w - cmd.robot_anchor_pos_w
    )


def motion_anchor_ori_b(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Reference anchor orientation relative to the robot anchor, as 6-D rotation."""
    cmd = tracking_command(env, command_name)
    return rotation_6d_from_quat(quat_conj_mul(cmd.robot_anchor_quat_w, cmd.ref_anchor_quat_w))


def motion_anchor_ori_b_mf_nonflat(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Future reference anchor orientations relative to the current robot anchor, (N, frames, 6)."""
    cmd = tracking_command(env, command_name)
    future = cmd.future_anchor_quat_w
    return rotation_6d_from_quat(quat_conj_mul(cmd.robot_anchor_quat_w[:, None, :], future))


def robot_body_pos_b(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Tracked robot body positions in the robot anchor frame, flattened."""
    cmd = tracking_command(env, command_name)
    rel = cmd.robot_body_pos_w - cmd.robot_anchor_pos_w[:, None, :]
    anchor_quat = cmd.robot_anchor_quat_w[:, None, :].expand(-1, rel.shape[1], -1)
    return quat_apply_inverse(anchor_quat, rel).flatten(1)


def robot_body_ori_b(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Tracked robot body orientations in the robot anchor frame, 6-D each, flattened."""
    cmd = tracking_command(env, command_name)
    bodies = cmd.robot_body_quat_w
    return rotation_6d_from_quat(
        quat_conj_mul(cmd.robot_anchor_quat_w[:, None, :], bodies)
    ).flatten(1)


# ---------------------------------------------------------------- VR 3-point (teleop)
def vr_3point_local_target(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Reference VR point positions in the reference anchor frame, (N, 9)."""
    return tracking_command(env, command_name).ref_vr_points_b.flatten(1)


def vr_3point_local_orn_target(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Reference VR body orientations relative to the reference anchor, quaternions (N, 12)."""
    cmd = tracking_command(env, command_name)
    quats = cmd.ref_body_quat_w[:, cmd.vr_index]
    return quat_conj_mul(cmd.ref_anchor_quat_w[:, None, :], quats).flatten(1)


# ---------------------------------------------------------------- SMPL keypoints
def smpl_joints_multi_future_local_nonflat(
    env: ManagerBasedRlEnv, command_name: str
) -> torch.Tensor:
    """Future SMPL keypoints, each frame in its own SMPL root frame, (N, frames, 72)."""
    cmd = tracking_command(env, command_name)
    joints = cmd.smpl_future_joints_w  # (N, F, 24, 3)
    rel = joints - joints[:, :, :1, :]
    return (rel @ cmd.smpl_future_root_rot).flatten(2)  # rows (p - root)^T R = (R^T (p - root))^T


def smpl_root_ori_b_multi_future(env: ManagerBasedRlEnv, command_name: str) -> torch.Tensor:
    """Future SMPL root orientations relative to the robot anchor, 6-D, (N, frames, 6)."""
    cmd = tracking_command(env, command_name)
    robot_rot_t = matrix_from_quat(cmd.robot_anchor_quat_w).transpose(-1, -2)  # (N, 3, 3)
    return rotation_6d_from_matrix(robot_rot_t[:, None] @ cmd.smpl_future_root_rot)


def joint_pos_multi_future_wrist_for_smpl(
    env: ManagerBasedRlEnv, command_name: str
) -> torch.Tensor:
    """Wrist joint targets at the SMPL future frames (SMPL has no wrist twist), (N, frames, 6)."""
    return tracking_command(env, command_name).smpl_future_wrist_pos
