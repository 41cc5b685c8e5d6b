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
    return 2.0 * torch.atan2(
        torch.linalg.vector_norm(relative[..., 1:], dim=-1), relative[..., 0].abs()
    )


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
        [
            1 - s * (yy + zz),
            s * (xy - wz),
            s * (xy + wz),
            1 - s * (xx + zz),
            s * (xz - wy),
            s * (yz + wx),
        ],
        dim=-1,
    )


def relative_yaw_half_angle(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of half the yaw of a * conj(b) (mjlab's yaw_quat of that product), (N,) each."""
    aw, av = a[..., :1], a[..., 1:]
    bw, bv = b[..., :1], b[..., 1:]
    w = (aw * bw + (av * bv).sum(-1, keepdim=True)).squeeze(-1)
    x, y, z = (bw * av - aw * bv - torch.linalg.cross(av, bv, dim=-1)).unbind(-1)
    half = 0.5 * torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return torch.cos(half), torch.sin(half)


def yaw_rotate(
    cos_half: torch.Tensor, sin_half: torch.Tensor, pos: torch.Tensor, quat: torch.Tensor
):
    """Rotate positions (N, B, 3) and orientations (N, B, 4) about world z by a per-env yaw."""
    c, s = cos_half[:, None], sin_half[:, None]
    cos_yaw, sin_yaw = c * c - s * s, 2 * c * s
    x, y, z = pos.unbind(-1)
    new_pos = torch.stack([cos_yaw * x - sin_yaw * y, sin_yaw * x + cos_yaw * y, z], dim=-1)
    w, qx, qy, qz = quat.unbind(-1)
    new_quat = torch.stack(
        [c * w - s * qz, c * qx - s * qy, c * qy + s * qx, c * qz + s * w], dim=-1
    )
    return new_pos, new_quat
