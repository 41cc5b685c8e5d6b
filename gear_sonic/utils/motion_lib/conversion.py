"""Turn a RawClip into robot-ordered, fixed-rate frames ready for the MotionLib."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gear_sonic.utils.np_quat import angular_velocity, linear_velocity

from .clip import RawClip
from .errors import MotionDataError
from .kinematics import RobotKinematics
from .resample import lerp_at, slerp_at, target_times


@dataclass
class ClipFrames:
    """One clip at the library's rate: joints in robot order, bodies in the requested order."""

    key: str
    fps: float
    joint_pos: np.ndarray  # (N, J)
    joint_vel: np.ndarray  # (N, J)
    body_pos_w: np.ndarray  # (N, B, 3)
    body_quat_w: np.ndarray  # (N, B, 4) wxyz
    body_lin_vel_w: np.ndarray  # (N, B, 3)
    body_ang_vel_w: np.ndarray  # (N, B, 3)
    smpl_joints: np.ndarray | None  # (N, 24, 3)

    @property
    def num_frames(self) -> int:
        return int(self.joint_pos.shape[0])


def joint_columns(clip: RawClip, robot_joint_names: Sequence[str]) -> np.ndarray:
    """Column index per robot joint, so `clip.joint_pos[:, cols]` is in robot order."""
    where = dict(source=clip.source, clip_key=clip.key)
    num_cols = clip.joint_pos.shape[1]
    if not clip.joint_names:  # unnamed columns are in robot order by convention
        if num_cols != len(robot_joint_names):
            raise MotionDataError(
                f"has {num_cols} joint columns ('dof' in SONIC PKL) but the robot has "
                f"{len(robot_joint_names)} joints", field="joint_pos", **where,
                fix="export all robot joints in XML order, or store 'joint_names'",
            )
        return np.arange(num_cols)
    unknown = [n for n in clip.joint_names if n not in robot_joint_names]
    if unknown:
        raise MotionDataError(
            f"names joints the robot does not have: {unknown}", field="joint_names", **where,
            fix=f"rename them to robot joints {list(robot_joint_names)}",
        )
    missing = [n for n in robot_joint_names if n not in clip.joint_names]
    if missing:
        raise MotionDataError(
            f"lacks robot joints {missing}", field="joint_names", **where,
            fix="export every robot joint",
        )
    return np.array([clip.joint_names.index(n) for n in robot_joint_names])


def body_columns(
    clip: RawClip, body_names: Sequence[str], robot_body_names: Sequence[str]
) -> np.ndarray:
    """Index of each requested body among the clip's stored bodies."""
    where = dict(source=clip.source, clip_key=clip.key)
    stored = clip.body_names
    if stored is None:
        num_stored = clip.body_pos_w.shape[1]
        if num_stored != len(robot_body_names):
            raise MotionDataError(
                f"stores {num_stored} unnamed bodies but the robot has {len(robot_body_names)}",
                field="body_names", **where,
                fix="store 'body_names', or all robot bodies in XML order",
            )
        stored = list(robot_body_names)
    missing = [n for n in body_names if n not in stored]
    if missing:
        raise MotionDataError(
            f"lacks requested bodies {missing}", field="body_names", **where,
            fix="export these bodies, or drop body_pos_w so they are computed by FK",
        )
    return np.array([stored.index(n) for n in body_names])


def convert_clip(
    clip: RawClip, kin: RobotKinematics, body_names: Sequence[str], target_fps: float
) -> ClipFrames:
    """Map to robot order, resample to `target_fps`, and fill in missing body states/velocities."""
    times = target_times(clip.num_frames, clip.fps, target_fps)
    cols = joint_columns(clip, kin.joint_names)
    joint_pos = lerp_at(clip.joint_pos[:, cols], clip.fps, times)
    if clip.joint_vel is not None:
        joint_vel = lerp_at(clip.joint_vel[:, cols], clip.fps, times)
    else:
        joint_vel = linear_velocity(joint_pos, times)

    lin_vel = ang_vel = None
    if clip.has_bodies:
        bodies = body_columns(clip, body_names, kin.body_names)
        body_pos = lerp_at(clip.body_pos_w[:, bodies], clip.fps, times)
        body_quat = slerp_at(clip.body_quat_w[:, bodies], clip.fps, times)
        if clip.body_lin_vel_w is not None:
            lin_vel = lerp_at(clip.body_lin_vel_w[:, bodies], clip.fps, times)
        if clip.body_ang_vel_w is not None:
            ang_vel = lerp_at(clip.body_ang_vel_w[:, bodies], clip.fps, times)
    elif clip.has_root:
        root_pos = lerp_at(clip.root_pos, clip.fps, times)
        root_quat = slerp_at(clip.root_quat, clip.fps, times)
        bodies = np.array([kin.body_names.index(n) for n in body_names])
        all_pos, all_quat = kin.forward(root_pos, root_quat, joint_pos)
        body_pos, body_quat = all_pos[:, bodies], all_quat[:, bodies]
    else:
        raise MotionDataError(
            "stores neither body poses nor a root trajectory, so bodies cannot be computed",
            source=clip.source, clip_key=clip.key, field="root_pos",
            fix="add root_pos/root_quat (or 7 root columns in joint_pos) or body_pos_w/body_quat_w",
        )
    if lin_vel is None:
        lin_vel = linear_velocity(body_pos, times)
    if ang_vel is None:
        ang_vel = angular_velocity(body_quat, times)

    smpl = None if clip.smpl_joints is None else lerp_at(clip.smpl_joints, clip.fps, times)
    return ClipFrames(
        key=clip.key, fps=float(target_fps), joint_pos=f32(joint_pos), joint_vel=f32(joint_vel),
        body_pos_w=f32(body_pos), body_quat_w=f32(body_quat), body_lin_vel_w=f32(lin_vel),
        body_ang_vel_w=f32(ang_vel), smpl_joints=f32(smpl),
    )


def f32(array: np.ndarray | None) -> np.ndarray | None:
    """Host copies are float32: the device tensors are float32 anyway, and it halves memory."""
    return None if array is None else np.ascontiguousarray(array, dtype=np.float32)


def fk_max_error(clip: RawClip, kin: RobotKinematics) -> float | None:
    """Largest distance (m) between stored body positions and FK of stored root + joints.

    Bodies are matched by name (or by index when the clip stores every robot body unnamed);
    None when the clip stores no bodies.
    """
    if not clip.has_bodies or not clip.has_root:
        return None
    cols = joint_columns(clip, kin.joint_names)
    if clip.body_names is None:
        names = kin.body_names
    else:
        names = [n for n in clip.body_names if n in kin.body_names]
        if not names:
            raise MotionDataError(
                "shares no body names with the robot", source=clip.source, clip_key=clip.key,
                field="body_names", fix="use the robot's body names",
            )
    stored = clip.body_pos_w[:, body_columns(clip, names, kin.body_names)]
    fk_pos, _ = kin.forward(clip.root_pos, clip.root_quat, clip.joint_pos[:, cols])
    fk_pos = fk_pos[:, [kin.body_names.index(n) for n in names]]
    return float(np.linalg.norm(fk_pos - stored, axis=-1).max())
