"""Footstep planning and task-space trajectories for feet and centre of mass.

The gait is quasi-dynamic: feet alternate between stance (fixed on the floor) and
swing (a smooth raised arc), and the centre of mass follows the linear inverted
pendulum (LIPM) solution whose zero-moment point (ZMP) tracks a reference that
sits on the stance foot in single support and glides between the feet in double
support. This keeps the motion balanced by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .robot import DT, GRAVITY


@dataclass
class GaitTiming:
    double_support: float = 0.2  # seconds of weight transfer before each swing
    single_support: float = 0.45  # seconds of swing
    swing_height: float = 0.06  # peak sole clearance, metres
    first_shift: float = 0.5  # initial weight shift onto the first stance foot
    final_shift: float = 0.6  # settling back to the middle after the last step


@dataclass
class GaitTrajectory:
    """Per-frame ground-relative targets. Index 0 is the left foot, 1 the right."""

    foot_xy_yaw: np.ndarray  # (T, 2, 3) site x, y on the floor and yaw
    foot_lift: np.ndarray  # (T, 2) sole height above the floor
    contact: np.ndarray  # (T, 2) bool, foot in stance
    zmp: np.ndarray  # (T, 2) ZMP reference

    @property
    def num_frames(self) -> int:
        return len(self.zmp)


def smoothstep(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk blend 0 -> 1 with zero velocity and acceleration at both ends."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10.0 - 15.0 * s + 6.0 * s**2)


def swing_lift(s: np.ndarray, height: float) -> np.ndarray:
    """Bell-shaped lift, 64 s^3 (1 - s)^3 peaks at 1: smooth take-off and landing."""
    return height * 64.0 * s**3 * (1.0 - s) ** 3


def yaw_rotation(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s], [s, c]])


def feet_from_body(body: np.ndarray, half_width: float) -> np.ndarray:
    """Left/right foot (x, y, yaw) placed symmetrically about a body pose (x, y, yaw)."""
    feet = np.zeros((2, 3))
    for side, sign in enumerate((1.0, -1.0)):
        feet[side, :2] = body[:2] + yaw_rotation(body[2]) @ np.array([0.0, sign * half_width])
        feet[side, 2] = body[2]
    return feet


def footsteps_from_increments(start_body: np.ndarray, increments: list, first_swing: int,
                              half_width: float) -> list[tuple[int, np.ndarray]]:
    """Turn body-frame increments (dx, dy, dyaw) per step into (swing side, target) pairs.

    Each step moves the body pose by one increment and lands the swing foot at its
    nominal place beside the new body pose; a closing step brings the trailing foot
    alongside so every clip ends in a parallel double stance.
    """
    body = np.array(start_body, dtype=float)
    steps, swing = [], first_swing
    for dx, dy, dyaw in increments:
        body[:2] += yaw_rotation(body[2]) @ np.array([dx, dy])
        body[2] += dyaw
        steps.append((swing, feet_from_body(body, half_width)[swing]))
        swing = 1 - swing
    steps.append((swing, feet_from_body(body, half_width)[swing]))
    return steps


def frames(seconds: float) -> int:
    return max(1, int(round(seconds / DT)))


class _GaitBuilder:
    """Appends gait segments frame by frame."""

    def __init__(self, feet: np.ndarray):
        self.feet = np.array(feet, dtype=float)
        self.zmp = self.feet[:, :2].mean(axis=0)
        self.rows_feet, self.rows_lift, self.rows_contact, self.rows_zmp = [], [], [], []

    def _emit(self, feet, lift, contact, zmp):
        self.rows_feet.append(np.array(feet))
        self.rows_lift.append(np.array(lift))
        self.rows_contact.append(np.array(contact, dtype=bool))
        self.rows_zmp.append(np.array(zmp))

    def double_support(self, n: int, zmp_goal: np.ndarray):
        start = self.zmp.copy()
        for k in range(n):
            s = smoothstep(np.array((k + 1) / n))
            self.zmp = (1.0 - s) * start + s * zmp_goal
            self._emit(self.feet, (0.0, 0.0), (True, True), self.zmp)

    def single_support(self, n: int, swing: int, target: np.ndarray, height: float):
        start = self.feet[swing].copy()
        self.zmp = self.feet[1 - swing, :2].copy()
        for k in range(n):
            # Frames strictly inside (0, 1): the end points are the stance frames.
            s = (k + 1) / (n + 1)
            blend = smoothstep(np.array(s))
            feet = self.feet.copy()
            feet[swing] = (1.0 - blend) * start + blend * target
            lift = [0.0, 0.0]
            lift[swing] = float(swing_lift(np.array(s), height))
            contact = [True, True]
            contact[swing] = False
            self._emit(feet, lift, contact, self.zmp)
        self.feet[swing] = target

    def build(self) -> GaitTrajectory:
        return GaitTrajectory(
            foot_xy_yaw=np.stack(self.rows_feet),
            foot_lift=np.stack(self.rows_lift),
            contact=np.stack(self.rows_contact),
            zmp=np.stack(self.rows_zmp),
        )


def plan_gait(start_feet: np.ndarray, steps: list[tuple[int, np.ndarray]], timing: GaitTiming,
              lead_in: float, total: float) -> GaitTrajectory:
    """Stand for `lead_in` seconds, walk the footsteps, then stand until `total` seconds."""
    gait = _GaitBuilder(start_feet)
    gait.double_support(frames(lead_in), gait.zmp)
    for i, (swing, target) in enumerate(steps):
        shift = timing.first_shift if i == 0 else timing.double_support
        gait.double_support(frames(shift), gait.feet[1 - swing, :2])
        gait.single_support(frames(timing.single_support), swing, np.asarray(target),
                            timing.swing_height)
    gait.double_support(frames(timing.final_shift), gait.feet[:, :2].mean(axis=0))
    remaining = frames(total) - len(gait.rows_zmp)
    if remaining < frames(0.5):
        raise ValueError(f"clip too short for its steps: {remaining} frames left to settle")
    gait.double_support(remaining, gait.zmp)
    return gait.build()


def standing_gait(feet: np.ndarray, total: float,
                  zmp_offsets: np.ndarray | None = None) -> GaitTrajectory:
    """Double stance for the whole clip; optional per-frame ZMP offsets (e.g. sway)."""
    n = frames(total)
    centre = feet[:, :2].mean(axis=0)
    zmp = np.tile(centre, (n, 1)) if zmp_offsets is None else centre + zmp_offsets
    return GaitTrajectory(
        foot_xy_yaw=np.tile(feet, (n, 1, 1)),
        foot_lift=np.zeros((n, 2)),
        contact=np.ones((n, 2), dtype=bool),
        zmp=zmp,
    )


def lipm_com_from_zmp(zmp: np.ndarray, com_height: float) -> np.ndarray:
    """COM path whose LIPM ZMP equals `zmp` exactly, at rest at both ends.

    Solves c - c'' / w^2 = p as a boundary-value problem (c = p at the ends).
    The operator is positive definite, so the solution is the ZMP reference
    smoothed by a two-sided exponential kernel: bounded and free of the unstable
    mode that a forward integration would excite.
    """
    n = len(zmp)
    w2 = GRAVITY / com_height
    a = 1.0 / (w2 * DT**2)
    system = np.zeros((n, n))
    idx = np.arange(1, n - 1)
    system[idx, idx] = 1.0 + 2.0 * a
    system[idx, idx - 1] = -a
    system[idx, idx + 1] = -a
    system[0, 0] = system[-1, -1] = 1.0
    return np.linalg.solve(system, zmp)


def yaw_between_feet(foot_xy_yaw: np.ndarray) -> np.ndarray:
    """Heading of the pelvis: the mean of the two foot yaws (continuous, no wrapping)."""
    return foot_xy_yaw[:, :, 2].mean(axis=1)
