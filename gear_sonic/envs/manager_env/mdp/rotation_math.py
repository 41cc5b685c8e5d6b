"""Fused quaternion helpers for the per-step MDP terms (w, x, y, z; unit quaternions).

mjlab's general helpers (`quat_error_magnitude`, `quat_mul(quat_inv(a), b)`, `matrix_from_quat`)
run 30-80 small tensor ops each; these compute the same values in about a dozen, which counts
on CPU where every op costs microseconds and a step calls them a dozen times.
"""

from __future__ import annotations

import torch


def quat_conj_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """conj(a) * b: `b` expressed relative to `a` (= quat_mul(quat_inv(a), b) for unit `a`)."""
    aw, av = a[..., :1], a[..., 1:]
    bw, bv = b[..., :1], b[..., 1:]
    w = aw * bw + (av * bv).sum(-1, keepdim=True)
    v = aw * bv - bw * av - torch.linalg.cross(av, bv, dim=-1)
    return torch.cat([w, v], dim=-1)


def quat_angle_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rotation angle (rad, in [0, pi]) between `a` and `b` (= mjlab's quat_error_magnitude)."""
    relative = quat_conj_mul(a, b)
    return 2.0 * torch.atan2(torch.linalg.vector_norm(relative[..., 1:], dim=-1), relative[..., 0].abs())


def rotation_6d_from_quat(q: torch.Tensor) -> torch.Tensor:
    """First two columns of the rotation matrix, row by row: (..., 4) -> (..., 6).

    Same layout as `rotation_6d_from_matrix(matrix_from_quat(q))`: R00 R01 R10 R11 R20 R21.
    """
    w, x, y, z = q.unbind(-1)
    s = 2.0 / (q * q).sum(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    return torch.stack(
        [1 - s * (yy + zz), s * (xy - wz), s * (xy + wz), 1 - s * (xx + zz), s * (xz - wy), s * (yz + wx)],
        dim=-1,
    )
