"""Definitions of the sample clips as task-space target trajectories.

Every clip starts and ends in the default knees-bent double stance, so frame 0
can initialise a simulated robot. The seed only perturbs speeds and amplitudes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import mujoco
import numpy as np

from .gait import (GaitTiming, GaitTrajectory, feet_from_body, footsteps_from_increments, frames,
                   lipm_com_from_zmp, plan_gait, smoothstep, standing_gait, yaw_between_feet)
from .ik import TaskTargets
from .robot import DT, HAND_SITES, default_joint_pos, joint_names, load_model, standing_geometry


@dataclass
class ClipPlan:
    targets: TaskTargets
    contact: np.ndarray  # (T, 2) bool
    zmp: np.ndarray  # (T, 2) intended zero-moment point


@dataclass(frozen=True)
class ClipSpec:
    name: str
    description: str
    build: Callable[[np.random.Generator], ClipPlan]


def start_body() -> np.ndarray:
    """Ground pose (x, y, yaw) midway between the feet in the default stance."""
    return np.array([standing_geometry()["foot_site_x"], 0.0, 0.0])


def start_feet() -> np.ndarray:
    return feet_from_body(start_body(), standing_geometry()["foot_site_y"])


def joint_index(name: str) -> int:
    return joint_names(load_model()).index(name)


@lru_cache(maxsize=1)
def rest_palm_positions() -> np.ndarray:
    """World palm positions (2, 3) in the default pose with the soles on the floor."""
    model = load_model()
    data = mujoco.MjData(model)
    data.qpos[:] = np.concatenate([[0.0, 0.0, standing_geometry()["pelvis_z"], 1, 0, 0, 0],
                                   default_joint_pos(model)])
    mujoco.mj_forward(model, data)
    return np.array([data.site(s).xpos.copy() for s in HAND_SITES])


def targets_from_gait(gait: GaitTrajectory) -> TaskTargets:
    """Default targets: LIPM COM, constant pelvis height, heading between the feet."""
    geometry = standing_geometry()
    n = gait.num_frames
    rpy = np.zeros((n, 3))
    rpy[:, 2] = yaw_between_feet(gait.foot_xy_yaw)
    return TaskTargets(
        foot_xy_yaw=gait.foot_xy_yaw,
        foot_lift=gait.foot_lift,
        com_xy=lipm_com_from_zmp(gait.zmp, geometry["com_height"]),
        pelvis_z=np.full(n, geometry["pelvis_z"]),
        pelvis_rpy=rpy,
        torso_rpy=rpy.copy(),
        posture=np.tile(default_joint_pos(load_model()), (n, 1)),
        hand_pos=np.tile(rest_palm_positions(), (n, 1, 1)),
        hand_weight=np.zeros((n, 2)),
    )


def time_axis(n: int) -> np.ndarray:
    return np.arange(n) * DT


def ramp(t: np.ndarray, start: float, duration: float) -> np.ndarray:
    """Smooth 0 -> 1 transition beginning at `start`."""
    return smoothstep((t - start) / duration)


def add_arm_swing(targets: TaskTargets, amplitude: float, stride: float) -> None:
    """Counter-swing the arms against the legs (left arm forward with the right foot)."""
    feet = targets.foot_xy_yaw
    yaw = targets.pelvis_rpy[:, 2]
    delta = feet[:, 0, :2] - feet[:, 1, :2]
    forward = np.cos(yaw) * delta[:, 0] + np.sin(yaw) * delta[:, 1]
    swing = np.clip(forward / stride, -1.0, 1.0) * amplitude
    # Negative shoulder pitch moves the arm forward.
    targets.posture[:, joint_index("left_shoulder_pitch_joint")] += swing
    targets.posture[:, joint_index("right_shoulder_pitch_joint")] -= swing


def walking_plan(increments: list, first_swing: int, timing: GaitTiming, seconds: float,
                 arm_swing: float, lead_in: float = 0.8) -> ClipPlan:
    half_width = standing_geometry()["foot_site_y"]
    steps = footsteps_from_increments(start_body(), increments, first_swing, half_width)
    gait = plan_gait(start_feet(), steps, timing, lead_in, seconds)
    targets = targets_from_gait(gait)
    stride = max(np.hypot(dx, dy) for dx, dy, _ in increments) or 0.1
    add_arm_swing(targets, arm_swing, stride)
    return ClipPlan(targets, gait.contact, gait.zmp)


def jitter(rng: np.random.Generator, value: float, spread: float = 0.06) -> float:
    return float(value * rng.uniform(1.0 - spread, 1.0 + spread))


# --- standing clips -----------------------------------------------------------------------


def stand_idle(rng: np.random.Generator) -> ClipPlan:
    seconds = 6.0
    n = frames(seconds)
    t = time_axis(n)
    envelope = ramp(t, 0.3, 1.2) * (1.0 - ramp(t, seconds - 1.5, 1.2))
    sway = np.stack([
        jitter(rng, 0.006, 0.2) * np.sin(2 * np.pi * jitter(rng, 0.13) * t + 0.7),
        jitter(rng, 0.012, 0.2) * np.sin(2 * np.pi * jitter(rng, 0.22) * t),
    ], axis=1) * envelope[:, None]
    gait = standing_gait(start_feet(), seconds, sway)
    targets = targets_from_gait(gait)
    breathing = 0.003 * np.sin(2 * np.pi * 0.25 * t) * envelope
    targets.pelvis_z = targets.pelvis_z + breathing
    for side in ("left", "right"):
        targets.posture[:, joint_index(f"{side}_shoulder_pitch_joint")] += 8 * breathing
    return ClipPlan(targets, gait.contact, gait.zmp)


def squat(rng: np.random.Generator) -> ClipPlan:
    seconds = 6.0
    gait = standing_gait(start_feet(), seconds)
    targets = targets_from_gait(gait)
    t = time_axis(gait.num_frames)
    depth = ramp(t, 0.8, 1.8) * (1.0 - ramp(t, 3.4, 1.8))
    targets.pelvis_z = targets.pelvis_z - jitter(rng, 0.2) * depth
    # Hips flex and the trunk leans forward so the COM stays over the feet.
    targets.pelvis_rpy[:, 1] = 0.45 * depth
    targets.torso_rpy[:, 1] = 0.25 * depth
    # Arms come forward as a counterweight.
    for side in ("left", "right"):
        targets.posture[:, joint_index(f"{side}_shoulder_pitch_joint")] -= 1.0 * depth
    return ClipPlan(targets, gait.contact, gait.zmp)


def hand_path(t: np.ndarray, rest: np.ndarray,
              keyframes: list[tuple[float, float, np.ndarray]]) -> np.ndarray:
    """Piecewise smooth hand path: (start time, duration, goal) moves from the rest position."""
    path = np.tile(rest, (len(t), 1))
    for start, duration, goal in keyframes:
        s = ramp(t, start, duration)[:, None]
        path = path + s * (np.asarray(goal) - path[np.searchsorted(t, start)])
    return path


def wave_right_hand(rng: np.random.Generator) -> ClipPlan:
    seconds = 6.0
    gait = standing_gait(start_feet(), seconds)
    targets = targets_from_gait(gait)
    t = time_axis(gait.num_frames)
    rest = rest_palm_positions()[1]
    raised = np.array([0.17, -0.30, jitter(rng, 1.22, 0.02)])
    path = hand_path(t, rest, [(0.6, 1.2, raised), (4.2, 1.2, rest)])
    wave = ramp(t, 1.6, 0.4) * (1.0 - ramp(t, 3.8, 0.4))
    path[:, 1] += jitter(rng, 0.08) * np.sin(2 * np.pi * jitter(rng, 1.2) * (t - 1.6)) * wave
    targets.hand_pos[:, 1] = path
    targets.hand_weight[:, 1] = 1.0
    return ClipPlan(targets, gait.contact, gait.zmp)


def reach_forward(rng: np.random.Generator) -> ClipPlan:
    seconds = 6.0
    gait = standing_gait(start_feet(), seconds)
    targets = targets_from_gait(gait)
    t = time_axis(gait.num_frames)
    reach = jitter(rng, 0.34, 0.04)  # short of full extension, away from the arm singularity
    for side, sign in enumerate((1.0, -1.0)):
        rest = rest_palm_positions()[side]
        front = np.array([reach, sign * 0.17, 0.98])
        wide = np.array([0.22, sign * 0.42, 1.02])
        targets.hand_pos[:, side] = hand_path(t, rest, [(0.6, 1.3, front), (2.3, 1.2, wide),
                                                          (3.9, 1.4, rest)])
        targets.hand_weight[:, side] = 1.0
    return ClipPlan(targets, gait.contact, gait.zmp)


# --- stepping clips -----------------------------------------------------------------------


def walk_forward_slow(rng: np.random.Generator) -> ClipPlan:
    step = jitter(rng, 0.22)
    timing = GaitTiming(double_support=0.2, single_support=jitter(rng, 0.5, 0.04))
    increments = [(step / 2, 0, 0)] + [(step, 0, 0)] * 5
    return walking_plan(increments, 0, timing, 7.5, arm_swing=0.15)


def walk_arm_swing(rng: np.random.Generator) -> ClipPlan:
    step = jitter(rng, 0.24, 0.04)
    timing = GaitTiming(double_support=0.15, single_support=0.45)
    increments = [(step / 2, 0, 0)] + [(step, 0, 0)] * 5
    return walking_plan(increments, 1, timing, 7.0, arm_swing=jitter(rng, 0.4))


def walk_turn_left(rng: np.random.Generator) -> ClipPlan:
    step = jitter(rng, 0.2)
    turn = jitter(rng, 0.3)
    timing = GaitTiming(double_support=0.18, single_support=0.42)
    increments = ([(step / 2, 0, 0), (step, 0, 0), (step, 0, 0)]
                  + [(0.6 * step, 0, turn)] * 5)
    return walking_plan(increments, 1, timing, 8.0, arm_swing=0.12)


def turn_in_place_right(rng: np.random.Generator) -> ClipPlan:
    turn = jitter(rng, 0.35)
    timing = GaitTiming(double_support=0.22, single_support=0.45, swing_height=0.04)
    increments = [(0, 0, -turn)] * 4
    return walking_plan(increments, 1, timing, 6.0, arm_swing=0.0)


def side_step_left(rng: np.random.Generator) -> ClipPlan:
    step = jitter(rng, 0.09)
    timing = GaitTiming(double_support=0.22, single_support=0.45, swing_height=0.05)
    increments = [(0, step, 0)] * 4
    return walking_plan(increments, 0, timing, 6.0, arm_swing=0.0)


def walk_backward(rng: np.random.Generator) -> ClipPlan:
    step = jitter(rng, 0.15)
    timing = GaitTiming(double_support=0.2, single_support=0.45, swing_height=0.05)
    increments = [(-step / 2, 0, 0)] + [(-step, 0, 0)] * 4
    return walking_plan(increments, 0, timing, 6.5, arm_swing=0.1)


CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("stand_idle", "Quiet double stance with slow, small COM sway and breathing.",
             stand_idle),
    ClipSpec("walk_forward_slow", "Straight walk at about 0.3 m/s with light arm swing.",
             walk_forward_slow),
    ClipSpec("walk_turn_left", "Three straight steps, then a curved walk turning about 85 deg"
             " left.", walk_turn_left),
    ClipSpec("turn_in_place_right", "Four turning steps on the spot, about 85 deg to the right.",
             turn_in_place_right),
    ClipSpec("squat", "Squat down about 20 cm with arms forward, hold, and stand up.", squat),
    ClipSpec("wave_right_hand", "Standing, raise the right hand above the shoulder and wave.",
             wave_right_hand),
    ClipSpec("reach_forward", "Standing, reach forward with both hands, sweep them out, lower.",
             reach_forward),
    ClipSpec("side_step_left", "Four side steps to the left (about 0.35 m).", side_step_left),
    ClipSpec("walk_backward", "Slow backward walk (about 0.23 m/s, 0.7 m).", walk_backward),
    ClipSpec("walk_arm_swing", "Brisker forward walk (about 0.4 m/s) with pronounced arm swing.",
             walk_arm_swing),
)
