"""Rotation helpers the MDP terms share (quaternions are w, x, y, z)."""

from __future__ import annotations

import torch
from mjlab.utils.lab_api.math import matrix_from_quat


def rotation_6d_from_matrix(rot: torch.Tensor) -> torch.Tensor:
    """First two columns of a rotation matrix, (..., 3, 3) -> (..., 6): continuous, unlike quats."""
    return rot[..., :, :2].reshape(*rot.shape[:-2], 6)


def rotation_6d(quat: torch.Tensor) -> torch.Tensor:
    return rotation_6d_from_matrix(matrix_from_quat(quat))


def smpl_root_rotation(joints: torch.Tensor) -> torch.Tensor:
    """Root frame of SMPL keypoints (..., 24, 3) -> (..., 3, 3), columns x fwd, y left, z up.

    Built from the hips (left minus right = +y) and the spine (up), so it works for any source of
    keypoints, not only ones that carry a root orientation.
    """
    pelvis, left_hip, right_hip, spine = joints[..., 0, :], joints[..., 1, :], joints[..., 2, :], joints[..., 3, :]
    y_axis = torch.nn.functional.normalize(left_hip - right_hip, dim=-1)
    up = spine - pelvis
    x_axis = torch.nn.functional.normalize(torch.cross(y_axis, up, dim=-1), dim=-1)
    z_axis = torch.cross(x_axis, y_axis, dim=-1)
    return torch.stack([x_axis, y_axis, z_axis], dim=-1)
