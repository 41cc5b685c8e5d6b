"""Turn a qpos trajectory into the mjlab-compatible NPZ arrays (plus names and SMPL keypoints)."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from gear_sonic.utils.motion_lib.smpl_keypoints import smpl_keypoints_from_bodies

from .robot import FPS, body_names, joint_names, load_model

MANTISSA_BITS = 16


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of wxyz quaternions, broadcasting."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def make_quats_continuous(quat: np.ndarray) -> np.ndarray:
    """Flip signs along time (axis 0) so consecutive quaternions stay in one hemisphere."""
    out = quat.copy()
    for t in range(1, len(out)):
        flip = np.sum(out[t] * out[t - 1], axis=-1) < 0.0
        out[t][flip] *= -1.0
    return out


def rotation_vector(delta: np.ndarray) -> np.ndarray:
    """Axis-angle vector of wxyz quaternions (shortest rotation)."""
    delta = np.where(delta[..., :1] < 0.0, -delta, delta)
    sin_half = np.linalg.norm(delta[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, delta[..., :1])
    scale = np.where(sin_half > 1e-12, angle / np.maximum(sin_half, 1e-12), 2.0)
    return delta[..., 1:] * scale


def angular_velocity_world(quat: np.ndarray, dt: float) -> np.ndarray:
    """World-frame angular velocity from orientations along axis 0 (central differences).

    q(t+h) = dq * q(t-h) with dq expressed in the world frame, so w = log(dq) / 2h.
    """
    ang = np.zeros(quat.shape[:-1] + (3,))
    ang[1:-1] = rotation_vector(quat_mul(quat[2:], quat_conj(quat[:-2]))) / (2.0 * dt)
    ang[0] = rotation_vector(quat_mul(quat[1], quat_conj(quat[0]))) / dt
    ang[-1] = rotation_vector(quat_mul(quat[-1], quat_conj(quat[-2]))) / dt
    return ang


def forward_bodies(qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World positions and wxyz orientations of the 30 robot bodies per frame."""
    model = load_model(with_floor=False)
    data = mujoco.MjData(model)
    pos, quat = [], []
    for q in qpos:
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        pos.append(data.xpos[1:].copy())
        quat.append(data.xquat[1:].copy())
    return np.array(pos), make_quats_continuous(np.array(quat))


def reduce_precision(values: np.ndarray, mantissa_bits: int = MANTISSA_BITS) -> np.ndarray:
    """Round float32 values to `mantissa_bits` of mantissa (of 23).

    Deflate cannot compress the noisy low mantissa bits of float data; zeroing
    them shrinks the files by ~20% while keeping ~1e-5 relative precision
    (about 10 micrometres on body positions).
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    drop = 23 - mantissa_bits
    half = np.uint32(1 << (drop - 1))
    mask = np.uint32((0xFFFFFFFF << drop) & 0xFFFFFFFF)
    return ((bits + half) & mask).view(np.float32)


def clip_arrays(qpos: np.ndarray, foot_contact: np.ndarray) -> dict[str, np.ndarray]:
    """All NPZ fields of one clip; numeric fields as float32."""
    model = load_model(with_floor=False)
    dt = 1.0 / FPS
    names = body_names(model)
    body_pos, body_quat = forward_bodies(qpos)
    root_quat = make_quats_continuous(qpos[:, 3:7])
    arrays = {
        "fps": np.array([FPS]),
        "joint_pos": qpos[:, 7:],
        "joint_vel": np.gradient(qpos[:, 7:], dt, axis=0),
        "root_pos": qpos[:, :3],
        "root_quat": root_quat,
        "body_pos_w": body_pos,
        "body_quat_w": body_quat,
        "body_lin_vel_w": np.gradient(body_pos, dt, axis=0),
        "body_ang_vel_w": angular_velocity_world(body_quat, dt),
        "smpl_joints": smpl_keypoints_from_bodies(body_pos, body_quat, names),
    }
    arrays = {k: reduce_precision(v) for k, v in arrays.items()}
    arrays["joint_names"] = np.array(joint_names(model))
    arrays["body_names"] = np.array(names)
    arrays["foot_contact"] = np.asarray(foot_contact, dtype=bool)
    return arrays


def save_clip(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def load_clip(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
