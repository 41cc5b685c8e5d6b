"""Approximate SMPL (24-joint) keypoints derived from Unitree G1 body poses.

Each SMPL joint is a G1 body origin plus a fixed offset expressed in that body's
frame. The table is a hand-made correspondence (hip, knee, ankle and arm joints
sit on the matching G1 joint origins; spine, neck and head are spaced along the
torso; feet and hands are pushed out to the toe ball and the palm). It gives a
human-keypoint channel with the right topology and proportions for the G1, not
a fitted SMPL body.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "L_hip", "R_hip", "spine1", "L_knee", "R_knee", "spine2", "L_ankle",
    "R_ankle", "spine3", "L_foot", "R_foot", "neck", "L_collar", "R_collar", "head",
    "L_shoulder", "R_shoulder", "L_elbow", "R_elbow", "L_wrist", "R_wrist", "L_hand", "R_hand",
)

# SMPL joint -> (G1 body, offset in the body frame, metres).
G1_TO_SMPL: dict[str, tuple[str, tuple[float, float, float]]] = {
    "pelvis": ("pelvis", (0.0, 0.0, -0.07)),
    "L_hip": ("left_hip_roll_link", (0.0, 0.0, -0.03)),
    "R_hip": ("right_hip_roll_link", (0.0, 0.0, -0.03)),
    "spine1": ("torso_link", (0.0, 0.0, 0.05)),
    "L_knee": ("left_knee_link", (0.0, 0.0, 0.0)),
    "R_knee": ("right_knee_link", (0.0, 0.0, 0.0)),
    "spine2": ("torso_link", (0.0, 0.0, 0.14)),
    "L_ankle": ("left_ankle_roll_link", (0.0, 0.0, 0.0)),
    "R_ankle": ("right_ankle_roll_link", (0.0, 0.0, 0.0)),
    "spine3": ("torso_link", (0.0, 0.0, 0.21)),
    "L_foot": ("left_ankle_roll_link", (0.12, 0.0, -0.03)),
    "R_foot": ("right_ankle_roll_link", (0.12, 0.0, -0.03)),
    "neck": ("torso_link", (0.0, 0.0, 0.33)),
    "L_collar": ("torso_link", (0.0, 0.05, 0.27)),
    "R_collar": ("torso_link", (0.0, -0.05, 0.27)),
    "head": ("torso_link", (0.0, 0.0, 0.43)),
    "L_shoulder": ("left_shoulder_roll_link", (0.0, 0.0, 0.0)),
    "R_shoulder": ("right_shoulder_roll_link", (0.0, 0.0, 0.0)),
    "L_elbow": ("left_elbow_link", (0.0, 0.0, 0.0)),
    "R_elbow": ("right_elbow_link", (0.0, 0.0, 0.0)),
    "L_wrist": ("left_wrist_pitch_link", (0.0, 0.0, 0.0)),
    "R_wrist": ("right_wrist_pitch_link", (0.0, 0.0, 0.0)),
    "L_hand": ("left_wrist_yaw_link", (0.08, 0.0, 0.0)),
    "R_hand": ("right_wrist_yaw_link", (0.08, 0.0, 0.0)),
}


def quat_rotate(quat_wxyz: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Rotate vectors by unit quaternions (wxyz), broadcasting over leading dims."""
    w = quat_wxyz[..., :1]
    xyz = quat_wxyz[..., 1:]
    t = 2.0 * np.cross(xyz, vec)
    return vec + w * t + np.cross(xyz, t)


def smpl_keypoints_from_bodies(body_pos: np.ndarray, body_quat: np.ndarray,
                               body_names: Sequence[str]) -> np.ndarray:
    """SMPL joint positions (..., 24, 3) from G1 body positions (..., B, 3) and quats (..., B, 4).

    `body_names` lists the B bodies in the order of the arrays; every body named
    in G1_TO_SMPL must be present.
    """
    index = {name: i for i, name in enumerate(body_names)}
    missing = {body for body, _ in G1_TO_SMPL.values()} - set(index)
    if missing:
        raise KeyError(f"bodies needed for SMPL keypoints are missing: {sorted(missing)}")
    bodies = [index[G1_TO_SMPL[j][0]] for j in SMPL_JOINT_NAMES]
    offsets = np.array([G1_TO_SMPL[j][1] for j in SMPL_JOINT_NAMES], dtype=np.float64)
    pos = np.asarray(body_pos)[..., bodies, :]
    quat = np.asarray(body_quat)[..., bodies, :]
    return pos + quat_rotate(quat, np.broadcast_to(offsets, pos.shape))
