"""Reference motion for the deploy loop: one NPZ clip at the control rate, numpy only.

Reads the mjlab / BeyondMimic NPZ layout the training motion library reads (fps, joint_pos,
optional joint_names / joint_vel / root_pos / root_quat / body_* / smpl_joints) and converts it
the same way: joints mapped to the robot's order by name, resampled to the control rate (lerp,
slerp), tracked-body poses taken from the file or computed by forward kinematics, missing
velocities by finite differences. Frames are float32, like the library's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from gear_sonic.deploy.errors import DeployInputError
from gear_sonic.utils.np_quat import angular_velocity, normalize, slerp

_ROOT_POSE_COLS = 7  # some exporters prepend root xyz + wxyz to joint_pos
_ROOT_VEL_COLS = 6


@dataclass
class ReferenceMotion:
    """A clip at the control rate; bodies are the contract's tracked bodies, in its order."""

    name: str
    fps: float
    joint_pos: np.ndarray  # (T, J) robot joint order
    joint_vel: np.ndarray  # (T, J)
    body_pos_w: np.ndarray  # (T, B, 3)
    body_quat_w: np.ndarray  # (T, B, 4) wxyz
    body_lin_vel_w: np.ndarray  # (T, B, 3)
    body_ang_vel_w: np.ndarray  # (T, B, 3)
    smpl_joints: np.ndarray | None  # (T, 24, 3)

    @property
    def num_frames(self) -> int:
        return int(self.joint_pos.shape[0])

    def clamp(self, frames: np.ndarray | int) -> np.ndarray:
        return np.clip(np.asarray(frames), 0, self.num_frames - 1)


def load_motion(
    path: str | Path, joint_names: Sequence[str], body_names: Sequence[str],
    fps: float, model: mujoco.MjModel, model_body_names: Sequence[str] | None = None,
) -> ReferenceMotion:
    """Read `path` and convert it for a robot with `joint_names`, tracking `body_names`.

    `model_body_names`: the same bodies as named in `model` (which may prefix them), for FK.
    """
    model_body_names = list(model_body_names or body_names)
    path = Path(path)
    source = str(path)
    if path.suffix != ".npz" or not path.is_file():
        raise DeployInputError(source, "no such NPZ motion file", "pass --motion CLIP.npz")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except Exception as exc:  # corrupt archives raise many types
        raise DeployInputError(source, f"cannot be read as NPZ ({exc})",
                               "re-export it with numpy.savez") from exc
    if "fps" not in data or "joint_pos" not in data:
        raise DeployInputError(source, f"needs keys 'fps' and 'joint_pos' (has {sorted(data)})",
                               "export the clip in the mjlab NPZ layout")
    src_fps = float(np.asarray(data["fps"]).reshape(-1)[0])
    joint_pos = np.asarray(data["joint_pos"], dtype=np.float64)
    names = _names(data, "joint_names")
    root_pos = root_quat = None
    if _has_root_columns(joint_pos, names, len(joint_names)):
        root_pos, root_quat = joint_pos[:, :3], joint_pos[:, 3:_ROOT_POSE_COLS]
        joint_pos = joint_pos[:, _ROOT_POSE_COLS:]
    if names is not None and len(names) == joint_pos.shape[1] + 1:
        names = names[1:]  # a leading free-joint name
    if "root_pos" in data and "root_quat" in data:
        root_pos = np.asarray(data["root_pos"], np.float64)
        root_quat = np.asarray(data["root_quat"], np.float64)
    columns = _joint_columns(names, joint_pos.shape[1], joint_names, source)
    if joint_pos.shape[0] < 2 or not np.isfinite(src_fps) or src_fps <= 0:
        raise DeployInputError(source, f"needs >= 2 frames and fps > 0 (got "
                               f"{joint_pos.shape[0]} frames at fps {src_fps})", "re-export it")

    times = _target_times(joint_pos.shape[0], src_fps, fps)
    out_joint_pos = _lerp_at(joint_pos[:, columns], src_fps, times)
    if "joint_vel" in data:
        vel = np.asarray(data["joint_vel"], np.float64)
        if vel.shape[1] == joint_pos.shape[1] + _ROOT_VEL_COLS:
            vel = vel[:, _ROOT_VEL_COLS:]
        out_joint_vel = _lerp_at(vel[:, columns], src_fps, times)
    else:
        out_joint_vel = np.gradient(out_joint_pos, times, axis=0)

    lin_vel = ang_vel = None
    if "body_pos_w" in data and "body_quat_w" in data:
        stored = _names(data, "body_names")
        bodies = _body_columns(stored, data["body_pos_w"].shape[1], body_names, source)
        body_pos = _lerp_at(np.asarray(data["body_pos_w"], np.float64)[:, bodies], src_fps, times)
        quats = normalize(np.asarray(data["body_quat_w"], np.float64))
        body_quat = _slerp_at(quats[:, bodies], src_fps, times)
        if "body_lin_vel_w" in data:
            lin_vel = _lerp_at(np.asarray(data["body_lin_vel_w"], np.float64)[:, bodies],
                               src_fps, times)
        if "body_ang_vel_w" in data:
            ang_vel = _lerp_at(np.asarray(data["body_ang_vel_w"], np.float64)[:, bodies],
                               src_fps, times)
    elif root_pos is not None and root_quat is not None:
        body_pos, body_quat = forward_kinematics(
            model, _lerp_at(root_pos, src_fps, times),
            _slerp_at(normalize(root_quat), src_fps, times), out_joint_pos, model_body_names,
        )
    else:
        raise DeployInputError(source, "stores neither body poses nor a root trajectory",
                               "add root_pos/root_quat or body_pos_w/body_quat_w")
    if lin_vel is None:
        lin_vel = np.gradient(body_pos, times, axis=0)
    if ang_vel is None:
        ang_vel = angular_velocity(body_quat, times)
    smpl = data.get("smpl_joints")
    if smpl is not None:
        smpl = _lerp_at(np.asarray(smpl, np.float64), src_fps, times)

    def f32(a):
        return None if a is None else np.ascontiguousarray(a, dtype=np.float32)

    return ReferenceMotion(
        name=path.stem, fps=float(fps), joint_pos=f32(out_joint_pos), joint_vel=f32(out_joint_vel),
        body_pos_w=f32(body_pos), body_quat_w=f32(body_quat), body_lin_vel_w=f32(lin_vel),
        body_ang_vel_w=f32(ang_vel), smpl_joints=f32(smpl),
    )


def forward_kinematics(model, root_pos, root_quat, joint_pos, body_names):
    """Poses of `body_names` for each frame of root pose + joint positions (robot order)."""
    data = mujoco.MjData(model)
    free = next(j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE)
    root_adr = int(model.jnt_qposadr[free])
    hinge_adr = [int(model.jnt_qposadr[j]) for j in range(model.njnt) if j != free]
    ids = [model.body(n).id for n in body_names]
    pos = np.empty((len(joint_pos), len(ids), 3))
    quat = np.empty((len(joint_pos), len(ids), 4))
    for t in range(len(joint_pos)):
        data.qpos[root_adr:root_adr + 3] = root_pos[t]
        data.qpos[root_adr + 3:root_adr + 7] = root_quat[t]
        data.qpos[hinge_adr] = joint_pos[t]
        mujoco.mj_kinematics(model, data)
        pos[t], quat[t] = data.xpos[ids], data.xquat[ids]
    return pos, quat


# ---------------------------------------------------------------- helpers
def _names(data: dict, key: str) -> list[str] | None:
    if key not in data:
        return None
    return [str(n) for n in np.asarray(data[key]).reshape(-1)]


def _has_root_columns(joint_pos: np.ndarray, names: list[str] | None, num_joints: int) -> bool:
    cols = joint_pos.shape[1]
    if names is not None:
        return cols - len(names) in (_ROOT_POSE_COLS, _ROOT_POSE_COLS - 1)
    return cols == num_joints + _ROOT_POSE_COLS


def _joint_columns(names, num_cols, robot_joints, source) -> np.ndarray:
    if names is None:
        if num_cols != len(robot_joints):
            raise DeployInputError(
                source, f"joint_pos has {num_cols} columns but the policy's robot has "
                f"{len(robot_joints)} joints", "export all robot joints in order, or joint_names")
        return np.arange(num_cols)
    unknown = [n for n in names if n not in robot_joints]
    missing = [n for n in robot_joints if n not in names]
    if unknown or missing:
        raise DeployInputError(
            source, f"joints do not match the policy's robot (unknown {unknown[:4]}, "
            f"missing {missing[:4]})", "retarget the clip to the robot in metadata.json")
    return np.array([names.index(n) for n in robot_joints])


def _body_columns(stored, num_stored, body_names, source) -> np.ndarray:
    if stored is None:
        raise DeployInputError(source, f"stores {num_stored} bodies without body_names",
                               "store body_names with body_pos_w, or drop body_pos_w")
    missing = [n for n in body_names if n not in stored]
    if missing:
        raise DeployInputError(source, f"lacks tracked bodies {missing}",
                               "export them, or drop body_pos_w so FK computes them")
    return np.array([stored.index(n) for n in body_names])


def _target_times(num_frames: int, fps: float, target_fps: float) -> np.ndarray:
    duration = (num_frames - 1) / fps
    num_out = int(np.ceil(duration * target_fps - 1e-6)) + 1
    return np.minimum(np.arange(num_out) / target_fps, duration)


def _bracket(num_frames: int, fps: float, times: np.ndarray):
    position = times * fps
    nearest = np.round(position)
    position = np.where(np.abs(position - nearest) < 1e-9, nearest, position)
    index = np.clip(np.floor(position).astype(np.int64), 0, num_frames - 2)
    return index, position - index


def _lerp_at(values: np.ndarray, fps: float, times: np.ndarray) -> np.ndarray:
    index, alpha = _bracket(values.shape[0], fps, times)
    alpha = alpha.reshape((-1,) + (1,) * (values.ndim - 1))
    return values[index] * (1.0 - alpha) + values[index + 1] * alpha


def _slerp_at(quats: np.ndarray, fps: float, times: np.ndarray) -> np.ndarray:
    index, alpha = _bracket(quats.shape[0], fps, times)
    alpha = alpha.reshape((-1,) + (1,) * (quats.ndim - 2))
    return slerp(quats[index], quats[index + 1], alpha)
