"""One motion clip exactly as stored in a file (own fps, own joint/body order)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RawClip:
    """A clip as read from disk, before any mapping to a robot or resampling.

    All arrays are float numpy arrays with time as the first axis; quaternions are wxyz.
    `joint_names == []` means "the robot's own joint order" (SONIC PKL has no names).
    """

    key: str
    source: str
    fps: float
    joint_names: list[str]
    joint_pos: np.ndarray  # (T, J)
    root_pos: np.ndarray | None = None  # (T, 3)
    root_quat: np.ndarray | None = None  # (T, 4) wxyz
    joint_vel: np.ndarray | None = None  # (T, J)
    body_names: list[str] | None = None
    body_pos_w: np.ndarray | None = None  # (T, B, 3)
    body_quat_w: np.ndarray | None = None  # (T, B, 4) wxyz
    body_lin_vel_w: np.ndarray | None = None  # (T, B, 3)
    body_ang_vel_w: np.ndarray | None = None  # (T, B, 3)
    smpl_joints: np.ndarray | None = None  # (T, 24, 3)

    @property
    def num_frames(self) -> int:
        return int(self.joint_pos.shape[0])

    @property
    def duration_s(self) -> float:
        return (self.num_frames - 1) / self.fps

    @property
    def has_bodies(self) -> bool:
        return self.body_pos_w is not None and self.body_quat_w is not None

    @property
    def has_root(self) -> bool:
        return self.root_pos is not None and self.root_quat is not None

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-frame arrays that are present, by field name."""
        names = (
            "joint_pos", "root_pos", "root_quat", "joint_vel", "body_pos_w", "body_quat_w",
            "body_lin_vel_w", "body_ang_vel_w", "smpl_joints",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}
