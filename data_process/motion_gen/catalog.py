"""The extended clip catalogue: more gaits and speeds, arm actions and transitions.

Builds on the sample clips of clips.py (kept first, with the same order, so their
seeded perturbations and therefore their data stay the same) and on the same
planners: footsteps + LIPM COM for stepping, palm/pelvis targets for standing
actions. Actions that follow a walk are placed relative to where the walk ended.
"""

from __future__ import annotations

import numpy as np

from .clips import (CLIPS, ClipPlan, ClipSpec, hand_path, jitter, joint_index, ramp,
                    rest_palm_positions, start_body, start_feet, targets_from_gait, time_axis,
                    walking_plan)
from .gait import GaitTiming, standing_gait, yaw_rotation
from .robot import DT

SHOULDER_PITCH = ("left_shoulder_pitch_joint", "right_shoulder_pitch_joint")


# --- helpers ------------------------------------------------------------------------------


def end_body(plan: ClipPlan) -> np.ndarray:
    """Ground pose (x, y, yaw) between the feet on the last frame."""
    feet = plan.targets.foot_xy_yaw[-1]
    return np.array([*feet[:, :2].mean(axis=0), feet[:, 2].mean()])


def stop_time(plan: ClipPlan) -> float:
    """Time of the last frame in which a foot is in the air."""
    swing = np.flatnonzero(~plan.contact.all(axis=1))
    return float(swing[-1] + 1) * DT if len(swing) else 0.0


def relocate(points: np.ndarray, body: np.ndarray) -> np.ndarray:
    """Move world points defined for the start pose to the same place relative to `body`."""
    points = np.array(points, dtype=float)
    offset = points[..., :2] - start_body()[:2]
    points[..., :2] = body[:2] + offset @ yaw_rotation(body[2]).T
    return points


def standing_plan(seconds: float) -> ClipPlan:
    gait = standing_gait(start_feet(), seconds)
    return ClipPlan(targets_from_gait(gait), gait.contact, gait.zmp)


def add_squat(plan: ClipPlan, start: float, depth: float, down: float = 1.4, hold: float = 0.8,
              up: float = 1.4, arms: bool = True) -> np.ndarray:
    """Lower the pelvis by `depth` and come back up; returns the 0..1 depth profile."""
    targets = plan.targets
    t = time_axis(targets.num_frames)
    profile = ramp(t, start, down) * (1.0 - ramp(t, start + down + hold, up))
    lean = depth / 0.2
    targets.pelvis_z = targets.pelvis_z - depth * profile
    targets.pelvis_rpy[:, 1] += 0.45 * lean * profile
    targets.torso_rpy[:, 1] += 0.25 * lean * profile
    if arms:
        for name in SHOULDER_PITCH:
            targets.posture[:, joint_index(name)] -= 1.0 * profile
    return profile


def add_wave(plan: ClipPlan, rng: np.random.Generator, side: int, start: float,
             waving: float, body: np.ndarray | None = None, move: float = 1.1) -> None:
    """Raise one palm above the shoulder (side 0 = left), wave for `waving` s, lower it."""
    targets = plan.targets
    body = start_body() if body is None else body
    t = time_axis(targets.num_frames)
    sign = 1.0 if side == 0 else -1.0
    rest = relocate(rest_palm_positions()[side], body)
    raised = relocate(np.array([0.17, sign * 0.30, jitter(rng, 1.22, 0.02)]), body)
    lower_at = start + move + waving
    path = hand_path(t, rest, [(start, move, raised), (lower_at, move, rest)])
    envelope = ramp(t, start + move - 0.1, 0.4) * (1.0 - ramp(t, lower_at - 0.3, 0.4))
    lateral = yaw_rotation(body[2]) @ np.array([0.0, 1.0])
    wave = jitter(rng, 0.08) * np.sin(2 * np.pi * jitter(rng, 1.2) * (t - start - move))
    path[:, :2] += (sign * wave * envelope)[:, None] * lateral
    targets.hand_pos[:, side] = path
    targets.hand_weight[:, side] = np.maximum(targets.hand_weight[:, side],
                                              ramp(t, start - 0.4, 0.3))


def add_reach(plan: ClipPlan, keyframes_per_side: dict, drop: np.ndarray | None = None,
              body: np.ndarray | None = None, engage: float = 0.0) -> None:
    """Palm paths from the rest pose through (start, duration, goal) keyframes per side.

    Goals are given for the start pose (a goal of None returns to rest); `drop`
    lowers the whole path per frame (e.g. with a squat); with `engage` > 0 the
    hand task fades in just before that time instead of being active throughout.
    """
    targets = plan.targets
    body = start_body() if body is None else body
    t = time_axis(targets.num_frames)
    for side, keyframes in keyframes_per_side.items():
        rest = relocate(rest_palm_positions()[side], body)
        moves = [(s, d, rest if g is None else relocate(np.asarray(g), body))
                 for s, d, g in keyframes]
        path = hand_path(t, rest, moves)
        if drop is not None:
            path[:, 2] -= drop
        targets.hand_pos[:, side] = path
        targets.hand_weight[:, side] = ramp(t, engage - 0.3, 0.3) if engage > 0 else 1.0


def walk(increments: list, first_swing: int, gait_timing: GaitTiming, arm_swing: float,
         lead_in: float = 0.7, tail: float = 0.0, settle: float = 0.6) -> ClipPlan:
    """Walking plan whose length fits its steps plus `tail` seconds of standing (>= 4 s)."""
    num_steps = len(increments) + 1  # the closing step included
    seconds = (lead_in + gait_timing.first_shift + gait_timing.single_support
               + (num_steps - 1) * (gait_timing.double_support + gait_timing.single_support)
               + gait_timing.final_shift + settle + tail)
    seconds = max(4.0, np.ceil(seconds * 10.0) / 10.0)
    return walking_plan(increments, first_swing, gait_timing, seconds, arm_swing, lead_in)


def timing(ds: float, ss: float, height: float = 0.06, first: float = 0.45) -> GaitTiming:
    return GaitTiming(double_support=ds, single_support=ss, swing_height=height,
                      first_shift=first, final_shift=0.6)


# --- gaits at several speeds --------------------------------------------------------------


def walk_forward_medium(rng):
    step = jitter(rng, 0.25, 0.03)
    steps = [(step / 2, 0, 0)] + [(step, 0, 0)] * 4
    return walk(steps, 0, timing(0.1, 0.45, 0.05), jitter(rng, 0.15))


def walk_forward_fast(rng):
    step = jitter(rng, 0.26, 0.02)
    steps = [(step / 2, 0, 0)] + [(step, 0, 0)] * 5
    return walk(steps, 1, timing(0.08, 0.42, 0.05), jitter(rng, 0.15))


def run_jog(rng):
    """Jog-like fast walk: longest strides, near-zero double support (no flight phase:
    faster or longer steps exceed the joint acceleration and ZMP checks)."""
    stride = jitter(rng, 0.29, 0.02)
    steps = ([(stride / 3, 0, 0), (2 * stride / 3, 0, 0)] + [(stride, 0, 0)] * 5
             + [(stride / 2, 0, 0)])
    return walk(steps, 0, timing(0.04, 0.48, 0.05), jitter(rng, 0.12))


def walk_backward_fast(rng):
    step = jitter(rng, 0.2, 0.04)
    steps = [(-step / 2, 0, 0)] + [(-step, 0, 0)] * 5
    return walk(steps, 1, timing(0.14, 0.42, 0.05), 0.12)


def side_step_right(rng):
    step = jitter(rng, 0.09)
    return walk([(0, -step, 0)] * 4, 1, timing(0.22, 0.45, 0.05), 0.0)


def side_step_right_fast(rng):
    step = jitter(rng, 0.11, 0.04)
    return walk([(0, -step, 0)] * 5, 1, timing(0.14, 0.4, 0.05), 0.0)


def turn_in_place_left(rng):
    turn = jitter(rng, 0.35)
    return walk([(0, 0, turn)] * 4, 0, timing(0.22, 0.45, 0.04), 0.0)


def turn_in_place_left_fast(rng):
    turn = jitter(rng, 0.45, 0.04)
    return walk([(0, 0, turn)] * 4, 0, timing(0.14, 0.4, 0.04), 0.0)


def walk_turn_right(rng):
    step = jitter(rng, 0.22)
    turn = jitter(rng, 0.28)
    steps = [(step / 2, 0, 0), (step, 0, 0)] + [(0.6 * step, 0, -turn)] * 4
    return walk(steps, 0, timing(0.16, 0.42), 0.12)


# --- standing actions ---------------------------------------------------------------------


def squat_shallow(rng):
    plan = standing_plan(5.0)
    add_squat(plan, 0.5, jitter(rng, 0.12), down=1.2, hold=0.6, up=1.2)
    return plan


def squat_deep(rng):
    plan = standing_plan(5.0)
    add_squat(plan, 0.5, jitter(rng, 0.25, 0.03), down=1.6, hold=0.4, up=1.6)
    return plan


def wave_left_hand(rng):
    plan = standing_plan(5.0)
    add_wave(plan, rng, 0, 0.5, jitter(rng, 2.0))
    return plan


def wave_both_hands(rng):
    plan = standing_plan(5.0)
    waving = jitter(rng, 1.8)
    add_wave(plan, rng, 0, 0.5, waving)
    add_wave(plan, rng, 1, 0.5, waving)
    return plan


def reach_high(rng):
    plan = standing_plan(5.0)
    height = jitter(rng, 1.3, 0.02)
    add_reach(plan, {side: [(0.5, 1.5, [0.2, sign * 0.2, height]), (3.0, 1.5, None)]
                     for side, sign in ((0, 1.0), (1, -1.0))})
    return plan


def reach_side_left(rng):
    plan = standing_plan(5.0)
    out = jitter(rng, 0.42, 0.04)
    add_reach(plan, {0: [(0.5, 1.3, [0.15, out, 1.0]), (2.0, 1.0, [0.3, 0.25, 1.1]),
                         (3.3, 1.2, None)]})
    return plan


# --- transitions --------------------------------------------------------------------------


def walk_stop_wave(rng):
    step = jitter(rng, 0.24, 0.04)
    steps = [(step / 2, 0, 0)] + [(step, 0, 0)] * 2
    waving = jitter(rng, 1.4)
    plan = walk(steps, 0, timing(0.15, 0.42), 0.2, tail=waving + 2.0)
    add_wave(plan, rng, 1, stop_time(plan) + 0.7, waving, end_body(plan), move=1.0)
    return plan


def turn_then_walk(rng):
    turn, step = jitter(rng, 0.4), jitter(rng, 0.24, 0.04)
    steps = [(0, 0, turn), (0, 0, turn), (step / 2, 0, 0)] + [(step, 0, 0)] * 4
    return walk(steps, 0, timing(0.16, 0.45), 0.15)


def walk_then_turn_back(rng):
    step, turn = jitter(rng, 0.24, 0.04), jitter(rng, 0.42, 0.04)
    steps = [(step / 2, 0, 0), (step, 0, 0), (step, 0, 0), (step / 2, 0, 0)] + [(0, 0, -turn)] * 3
    return walk(steps, 1, timing(0.16, 0.42, 0.05), 0.15)


def side_step_then_walk(rng):
    side, step = jitter(rng, 0.09), jitter(rng, 0.24, 0.04)
    steps = [(0, side, 0)] * 2 + [(step / 2, 0, 0)] + [(step, 0, 0)] * 3
    return walk(steps, 0, timing(0.18, 0.42, 0.05), 0.12)


def walk_then_squat(rng):
    step = jitter(rng, 0.24, 0.04)
    steps = [(step / 2, 0, 0)] + [(step, 0, 0)] * 3
    plan = walk(steps, 1, timing(0.15, 0.42), 0.15, tail=2.8)
    add_squat(plan, stop_time(plan) + 0.7, jitter(rng, 0.16), down=1.2, hold=0.5, up=1.2)
    return plan


def squat_then_reach(rng):
    plan = standing_plan(5.5)
    depth = jitter(rng, 0.14)
    profile = add_squat(plan, 0.4, depth, down=1.2, hold=2.4, up=1.2, arms=False)
    reach = jitter(rng, 0.32, 0.04)
    add_reach(plan, {side: [(1.4, 1.2, [reach, sign * 0.18, 0.98]), (2.9, 1.0, None)]
                     for side, sign in ((0, 1.0), (1, -1.0))}, drop=depth * profile)
    return plan


def reach_then_walk(rng):
    step = jitter(rng, 0.22, 0.04)
    steps = [(step / 2, 0, 0)] + [(step, 0, 0)] * 3
    plan = walk(steps, 0, timing(0.15, 0.42), 0.0, lead_in=2.3)
    t = time_axis(plan.targets.num_frames)
    add_reach(plan, {0: [(0.3, 0.9, [0.3, 0.17, 1.0]), (1.3, 0.9, None)]})
    plan.targets.hand_weight[:, 0] = 1.0 - ramp(t, 2.0, 0.3)
    return plan


NEW_CLIPS: tuple[ClipSpec, ...] = (
    ClipSpec("walk_forward_medium", "Forward walk at about 0.45 m/s.", walk_forward_medium),
    ClipSpec("walk_forward_fast", "Fast forward walk at about 0.5 m/s, quick cadence.",
             walk_forward_fast),
    ClipSpec("run_jog", "Jog-like fast walk (about 0.55 m/s, long strides, near-zero"
             " double support, no flight), speeding up and slowing down.", run_jog),
    ClipSpec("walk_backward_fast", "Backward walk at about 0.35 m/s.", walk_backward_fast),
    ClipSpec("side_step_right", "Four side steps to the right (about 0.35 m).", side_step_right),
    ClipSpec("side_step_right_fast", "Five quicker side steps to the right (about 0.55 m).",
             side_step_right_fast),
    ClipSpec("turn_in_place_left", "Four turning steps on the spot, about 80 deg left.",
             turn_in_place_left),
    ClipSpec("turn_in_place_left_fast", "Four quick turning steps, about 105 deg left.",
             turn_in_place_left_fast),
    ClipSpec("walk_turn_right", "Two straight steps, then a curved walk turning about 65 deg"
             " right.", walk_turn_right),
    ClipSpec("squat_shallow", "Quick shallow squat (about 12 cm).", squat_shallow),
    ClipSpec("squat_deep", "Slow deep squat (about 25 cm) with arms forward.", squat_deep),
    ClipSpec("wave_left_hand", "Standing, raise the left hand and wave.", wave_left_hand),
    ClipSpec("wave_both_hands", "Standing, raise both hands and wave.", wave_both_hands),
    ClipSpec("reach_high", "Standing, reach up and forward with both hands, lower.", reach_high),
    ClipSpec("reach_side_left", "Standing, reach out to the left, then forward-up, lower.",
             reach_side_left),
    ClipSpec("walk_stop_wave", "Walk three steps, stop, wave with the right hand.",
             walk_stop_wave),
    ClipSpec("turn_then_walk", "Turn about 45 deg left on the spot, then walk forward.",
             turn_then_walk),
    ClipSpec("walk_then_turn_back", "Walk forward, stop, turn about 70 deg right on the spot.",
             walk_then_turn_back),
    ClipSpec("side_step_then_walk", "Two side steps left, then walk forward.",
             side_step_then_walk),
    ClipSpec("walk_then_squat", "Walk four steps, stop, squat about 16 cm and stand up.",
             walk_then_squat),
    ClipSpec("squat_then_reach", "Squat about 14 cm, reach forward with both hands while"
             " down, stand up.", squat_then_reach),
    ClipSpec("reach_then_walk", "Reach forward with the left hand, lower it, walk forward.",
             reach_then_walk),
)

# The sample clips keep their positions (and so their seeded perturbations).
ALL_CLIPS: tuple[ClipSpec, ...] = CLIPS + NEW_CLIPS
