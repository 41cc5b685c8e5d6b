"""Quaternion helpers in numpy (w, x, y, z): the one copy shared by the motion library (load
time) and the torch-free deploy loop (run time).

Importing this module must never pull in torch: the deploy loop runs on a robot computer that
has numpy, mujoco and onnxruntime only (tests/test_deploy_loop.py checks).
"""

from __future__ import annotations

import numpy as np

# Above this |dot| slerp's sin(angle) denominator is ill-conditioned; nlerp is exact enough.
SLERP_LINEAR_DOT = 0.9995


def xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    return np.concatenate([q[..., 3:4], q[..., 0:3]], axis=-1)


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    return np.concatenate([q[..., 1:4], q[..., 0:1]], axis=-1)


def normalize(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


def quat_inv(q: np.ndarray) -> np.ndarray:
    return quat_conjugate(q) / np.sum(q * q, axis=-1, keepdims=True)


def quat_apply(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    w, xyz = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(xyz, v)
    return v + w * t + np.cross(xyz, t)


def quat_apply_inverse(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    return quat_apply(quat_conjugate(q), v)


def matrix_from_quat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.moveaxis(q, -1, 0)
    s = 2.0 / np.sum(q * q, axis=-1)
    rows = [
        [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def rotation_6d_from_matrix(rot: np.ndarray) -> np.ndarray:
    """First two columns of a rotation matrix, row after row: (..., 3, 3) -> (..., 6)."""
    return rot[..., :, :2].reshape(*rot.shape[:-2], 6)


def rotation_6d(q: np.ndarray) -> np.ndarray:
    return rotation_6d_from_matrix(matrix_from_quat(q))


def quat_log(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle) of unit quaternions, taking the short way round."""
    q = np.where(q[..., :1] < 0.0, -q, q)
    w, v = q[..., 0], q[..., 1:]
    sin_half = np.linalg.norm(v, axis=-1)
    angle = 2.0 * np.arctan2(sin_half, w)
    # angle / sin_half -> 2 / w as the rotation vanishes.
    small = sin_half < 1e-8
    scale = np.where(small, 2.0 / np.maximum(w, 1e-12), angle / np.where(small, 1.0, sin_half))
    return v * scale[..., None]


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Batched slerp; `t` broadcasts against the quaternions' leading shape."""
    t = np.asarray(t, dtype=q0.dtype)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0.0, -q1, q1)  # shortest arc
    dot = np.abs(dot)
    angle = np.arccos(np.clip(dot, -1.0, 1.0))
    linear = dot > SLERP_LINEAR_DOT
    safe_sin = np.where(linear, 1.0, np.sin(angle))
    w0 = np.where(linear, 1.0 - t, np.sin((1.0 - t) * angle) / safe_sin)
    w1 = np.where(linear, t, np.sin(t * angle) / safe_sin)
    return normalize(w0 * q0 + w1 * q1)


def angular_velocity(quats: np.ndarray, times: np.ndarray) -> np.ndarray:
    """World-frame angular velocity of a quaternion trajectory (T, ..., 4) -> (T, ..., 3).

    Each interval gives log(q_{i+1} q_i^-1) / h_i; interior frames blend the two neighbouring
    intervals like np.gradient does, end frames use their single interval.
    """
    h = np.diff(times).reshape((-1,) + (1,) * (quats.ndim - 1))
    rates = quat_log(quat_mul(quats[1:], quat_conjugate(quats[:-1]))) / h
    out = np.empty(quats.shape[:-1] + (3,), dtype=quats.dtype)
    out[0], out[-1] = rates[0], rates[-1]
    if quats.shape[0] > 2:
        h_prev, h_next = h[:-1], h[1:]
        out[1:-1] = (h_next * rates[:-1] + h_prev * rates[1:]) / (h_prev + h_next)
    return out


def linear_velocity(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Time derivative along axis 0 with (possibly uneven) sample times."""
    return np.gradient(values, times, axis=0)
