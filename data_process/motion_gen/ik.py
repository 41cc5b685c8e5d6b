"""Whole-body inverse kinematics (mink) that turns task-space targets into G1 poses."""

from __future__ import annotations

from dataclasses import dataclass

import mink
import mujoco
import numpy as np

from .robot import (DT, FOOT_SITES, HAND_SITES, build_spec, default_joint_pos, hinge_ranges,
                    shrunk_ranges, standing_geometry)

# The IK may use 94% of each joint range, the checks accept 95%: a small buffer
# so the solver's limit handling never lands right on the checked bound.
IK_RANGE_FRACTION = 0.94

# Task weights: feet must be exact (they define contact), the COM keeps the
# robot balanced, the rest shapes the posture.
FOOT_POS_COST, FOOT_ORI_COST = 1000.0, 300.0
COM_COST = 100.0
PELVIS_HEIGHT_COST, PELVIS_ORI_COST = 50.0, 20.0
TORSO_ORI_COST = 10.0
HAND_POS_COST = 30.0
POSTURE_COST = 0.3
MAX_ITERS = 25
FOOT_TOL, COM_TOL, HEIGHT_TOL = 2e-4, 5e-4, 1e-3


@dataclass
class TaskTargets:
    """Per-frame targets for one clip (T frames). Feet: 0 = left, 1 = right."""

    foot_xy_yaw: np.ndarray  # (T, 2, 3)
    foot_lift: np.ndarray  # (T, 2) sole height above the floor
    com_xy: np.ndarray  # (T, 2)
    pelvis_z: np.ndarray  # (T,)
    pelvis_rpy: np.ndarray  # (T, 3) roll, pitch, yaw
    torso_rpy: np.ndarray  # (T, 3)
    posture: np.ndarray  # (T, 29) joint-space bias
    hand_pos: np.ndarray  # (T, 2, 3) world positions of the palms
    hand_weight: np.ndarray  # (T, 2) 0 disables a hand target

    @property
    def num_frames(self) -> int:
        return len(self.com_xy)


def rpy_to_so3(rpy: np.ndarray) -> mink.SO3:
    """World rotation Rz(yaw) Ry(pitch) Rx(roll)."""
    roll, pitch, yaw = rpy
    return (mink.SO3.from_z_radians(yaw) @ mink.SO3.from_y_radians(pitch)
            @ mink.SO3.from_x_radians(roll))


def ik_model() -> mujoco.MjModel:
    """G1 without floor, joint ranges narrowed to IK_RANGE_FRACTION."""
    model = build_spec(with_floor=False).compile()
    hinges = [j for j in range(model.njnt) if model.jnt_type[j] != 0]
    model.jnt_range[hinges] = shrunk_ranges(hinge_ranges(model), IK_RANGE_FRACTION)
    return model


class WholeBodyIK:
    """Solves each frame from the previous solution so the trajectory stays continuous."""

    def __init__(self):
        self.model = ik_model()
        geometry = standing_geometry()
        self.site_above_sole = geometry["site_above_sole"]
        q0 = np.concatenate([[0.0, 0.0, geometry["pelvis_z"], 1.0, 0.0, 0.0, 0.0],
                             default_joint_pos(self.model)])
        self.configuration = mink.Configuration(self.model, q0)
        self.feet = [mink.FrameTask(s, "site", FOOT_POS_COST, FOOT_ORI_COST) for s in FOOT_SITES]
        self.hands = [mink.FrameTask(s, "site", HAND_POS_COST, 0.0) for s in HAND_SITES]
        self.com = mink.ComTask(cost=[COM_COST, COM_COST, 0.0])
        self.pelvis = mink.FrameTask("pelvis", "body", [0.0, 0.0, PELVIS_HEIGHT_COST],
                                     PELVIS_ORI_COST)
        self.torso = mink.FrameTask("torso_link", "body", 0.0, TORSO_ORI_COST)
        self.posture = mink.PostureTask(self.model, cost=POSTURE_COST)
        self.limits = [mink.ConfigurationLimit(self.model, gain=0.5)]

    def _set_targets(self, targets: TaskTargets, k: int) -> list:
        """Targets of frame k; returns the active tasks (the pelvis target is set per iteration)."""
        for side, task in enumerate(self.feet):
            x, y, yaw = targets.foot_xy_yaw[k, side]
            z = self.site_above_sole + targets.foot_lift[k, side]
            task.set_target(mink.SE3.from_rotation_and_translation(
                mink.SO3.from_z_radians(yaw), np.array([x, y, z])))
        self.com.set_target(np.array([*targets.com_xy[k], 0.0]))
        self.torso.set_target(mink.SE3.from_rotation(rpy_to_so3(targets.torso_rpy[k])))
        q_bias = self.configuration.q.copy()
        q_bias[7:] = targets.posture[k]
        self.posture.set_target(q_bias)
        tasks = [*self.feet, self.com, self.pelvis, self.torso, self.posture]
        for side, task in enumerate(self.hands):
            weight = targets.hand_weight[k, side]
            if weight > 0.0:
                task.set_position_cost(HAND_POS_COST * weight)
                task.set_target(mink.SE3.from_translation(targets.hand_pos[k, side]))
                tasks.append(task)
        return tasks

    def _set_pelvis_target(self, targets: TaskTargets, k: int) -> None:
        """Pelvis orientation and height only: x, y are left to the COM task.

        mink measures the frame error in the pelvis frame, so with a pitched pelvis
        a fixed target x, y would leak into the height error; re-anchoring the
        target x, y at the current pelvis position keeps the error purely vertical.
        """
        x, y = self.configuration.q[:2]
        self.pelvis.set_target(mink.SE3.from_rotation_and_translation(
            rpy_to_so3(targets.pelvis_rpy[k]), np.array([x, y, targets.pelvis_z[k]])))

    def _converged(self, targets: TaskTargets, k: int) -> bool:
        foot_err = max(np.linalg.norm(t.compute_error(self.configuration)[:3]) for t in self.feet)
        com_err = np.linalg.norm(self.com.compute_error(self.configuration)[:2])
        height_err = abs(self.configuration.q[2] - targets.pelvis_z[k])
        return foot_err < FOOT_TOL and com_err < COM_TOL and height_err < HEIGHT_TOL

    def solve_frame(self, targets: TaskTargets, k: int) -> np.ndarray:
        tasks = self._set_targets(targets, k)
        for _ in range(MAX_ITERS):
            self._set_pelvis_target(targets, k)
            vel = mink.solve_ik(self.configuration, tasks, DT, solver="daqp",
                                damping=1e-3, limits=self.limits)
            self.configuration.integrate_inplace(vel, DT)
            if self._converged(targets, k):
                break
        return self.configuration.q.copy()

    def solve(self, targets: TaskTargets) -> np.ndarray:
        """(T, 36) qpos trajectory; the first frame is refined until it settles."""
        for _ in range(5):
            self.solve_frame(targets, 0)
        return np.stack([self.solve_frame(targets, k) for k in range(targets.num_frames)])
