"""AMP features: one configured list of per-frame terms, computed by the same code from the
simulator and from motion clips, then stacked over a window of k consecutive frames.

Both sources first fill a `FrameState` (world-frame root state, joints, foot contact in [0, 1]);
`frame_features` turns it into the feature vector, so the two can only differ in the state they
read. Foot contact is the one quantity measured differently: tanh of the net contact force in
the env, foot height and speed for clips (clips carry no forces).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from mjlab.utils.lab_api.math import quat_apply_inverse

from gear_sonic.utils.motion_lib.clip import RawClip
from gear_sonic.utils.motion_lib.errors import MotionDataError
from gear_sonic.utils.motion_lib.readers import read_motion_file
from gear_sonic.utils.motion_lib.resample import lerp_at, slerp_at, target_times

# term -> width per frame (joint terms: the robot's joint count, filled in by `frame_width`).
TERM_WIDTHS = {
    "joint_pos": None,
    "joint_vel": None,
    "root_vel_dir": 3,
    "root_ang_vel": 3,
    "root_height": 1,
    "foot_contacts": 2,
}
# The clip arrays each term reads (for the error that names a clip and a missing feature).
TERM_CLIP_FIELDS = {
    "joint_pos": ("joint_pos",),
    "joint_vel": ("joint_vel",),
    "root_vel_dir": ("root_quat", "body_lin_vel_w"),
    "root_ang_vel": ("root_quat", "body_ang_vel_w"),
    "root_height": ("root_pos",),
    "foot_contacts": ("body_pos_w", "body_lin_vel_w"),
}


class AMPFeatureError(ValueError):
    """AMP feature settings or expert clips that cannot be used."""


@dataclass(frozen=True)
class AMPFeatureSpec:
    terms: tuple[str, ...] = tuple(TERM_WIDTHS)
    window: int = 2  # frames per sample (k = 1..3)
    root_body: str = "pelvis"
    foot_bodies: tuple[str, ...] = ("left_ankle_roll_link", "right_ankle_roll_link")
    min_speed: float = 0.1  # m/s: below it the root velocity direction is zero
    contact_force_scale: float = 100.0  # N: env contact = tanh(|F| / scale)
    clip_contact_height: float = 0.045  # m: clip foot body below this ...
    clip_contact_speed: float = 0.1  # m/s: ... and slower than this (horizontal) is in contact

    def __post_init__(self):
        unknown = [t for t in self.terms if t not in TERM_WIDTHS]
        if unknown or not self.terms:
            raise AMPFeatureError(
                f"amp.features.terms: unknown or empty terms {unknown or list(self.terms)}; "
                f"choose from {list(TERM_WIDTHS)}"
            )
        if not 1 <= int(self.window) <= 3:
            raise AMPFeatureError(f"amp.features.window must be 1, 2 or 3, got {self.window}")
        if "foot_contacts" in self.terms and len(self.foot_bodies) != 2:
            raise AMPFeatureError("amp.features.foot_bodies: name the left and right foot bodies")

    def describe(self) -> dict:
        """What a checkpoint stores to check that a resumed run computes the same features."""
        return {"terms": list(self.terms), "window": int(self.window)}


@dataclass
class FrameState:
    """One frame (leading dims ...) of what the features read; quaternions wxyz, world frame."""

    joint_pos: torch.Tensor  # (..., J)
    joint_vel: torch.Tensor  # (..., J)
    root_pos: torch.Tensor  # (..., 3)
    root_quat: torch.Tensor  # (..., 4)
    root_lin_vel_w: torch.Tensor  # (..., 3)
    root_ang_vel_w: torch.Tensor  # (..., 3)
    foot_contact: torch.Tensor = field(default=None)  # (..., 2) in [0, 1]


def term_width(term: str, num_joints: int) -> int:
    """Features one frame of `term` has (joint terms: one per joint)."""
    return num_joints if TERM_WIDTHS[term] is None else TERM_WIDTHS[term]


def frame_width(spec: AMPFeatureSpec, num_joints: int) -> int:
    return sum(term_width(t, num_joints) for t in spec.terms)


def per_feature(values: float | dict, spec: AMPFeatureSpec, num_joints: int) -> torch.Tensor:
    """(k * F,) one value per feature of a window, from one number or a {term: number} map with
    an entry for each configured term (AMPSettings checks that)."""
    per_term = values if isinstance(values, dict) else dict.fromkeys(spec.terms, values)
    frame = [torch.full((term_width(t, num_joints),), float(per_term[t])) for t in spec.terms]
    return torch.cat(frame).repeat(spec.window)


def frame_features(state: FrameState, spec: AMPFeatureSpec) -> torch.Tensor:
    """(..., F) features of one frame, terms in the configured order."""
    parts = []
    for term in spec.terms:
        if term == "joint_pos":
            parts.append(state.joint_pos)
        elif term == "joint_vel":
            parts.append(state.joint_vel)
        elif term == "root_vel_dir":
            vel_b = quat_apply_inverse(state.root_quat, state.root_lin_vel_w)
            speed = vel_b.norm(dim=-1, keepdim=True)
            moving = speed >= spec.min_speed
            parts.append(
                torch.where(moving, vel_b / speed.clamp_min(1e-6), torch.zeros_like(vel_b))
            )
        elif term == "root_ang_vel":
            parts.append(quat_apply_inverse(state.root_quat, state.root_ang_vel_w))
        elif term == "root_height":
            parts.append(state.root_pos[..., 2:3])
        elif term == "foot_contacts":
            parts.append(state.foot_contact)
    return torch.cat([p.float() for p in parts], dim=-1)


def stack_windows(frames: torch.Tensor, window: int) -> torch.Tensor:
    """(T, F) consecutive frames -> (T - k + 1, k * F) samples, oldest frame first."""
    count = frames.shape[0] - window + 1
    return torch.cat([frames[i : i + count] for i in range(window)], dim=-1)


# ------------------------------------------------------------------------------------ env side
def env_contact(force: torch.Tensor, scale: float) -> torch.Tensor:
    """(N, 2, 3) net contact force per foot -> (N, 2) in [0, 1)."""
    return torch.tanh(force.norm(dim=-1) / scale)


def env_frame_state(env, spec: AMPFeatureSpec, sensor_name: str = "feet_contact") -> FrameState:
    """The current frame of every env of an mjlab ManagerBasedRlEnv."""
    data = env.scene["robot"].data
    contact = None
    if "foot_contacts" in spec.terms:
        contact = env_contact(env.scene[sensor_name].data.force, spec.contact_force_scale)
    return FrameState(
        joint_pos=data.joint_pos,
        joint_vel=data.joint_vel,
        root_pos=data.root_link_pos_w,
        root_quat=data.root_link_quat_w,
        root_lin_vel_w=data.root_link_lin_vel_w,
        root_ang_vel_w=data.root_link_ang_vel_w,
        foot_contact=contact,
    )


# ----------------------------------------------------------------------------------- clip side
def _require(clip: RawClip, spec: AMPFeatureSpec, joint_names: Sequence[str]) -> None:
    """Every array and name the configured terms read, or an error naming clip and feature."""
    for term in spec.terms:
        for name in TERM_CLIP_FIELDS[term]:
            if getattr(clip, name) is None:
                raise MotionDataError(
                    f"lacks '{name}', needed by the AMP feature '{term}'",
                    source=clip.source,
                    clip_key=clip.key,
                    field=name,
                    fix=f"add it to the clip or drop '{term}' from amp.features.terms",
                )
    needs_bodies = {"root_vel_dir", "root_ang_vel", "foot_contacts"} & set(spec.terms)
    wanted = [spec.root_body] * bool(needs_bodies - {"foot_contacts"})
    wanted += list(spec.foot_bodies) * ("foot_contacts" in spec.terms)
    missing = [b for b in wanted if b not in (clip.body_names or [])]
    if missing:
        term = "foot_contacts" if set(missing) & set(spec.foot_bodies) else "root velocities"
        raise MotionDataError(
            f"has no body {missing} in body_names, needed by the AMP feature '{term}'",
            source=clip.source,
            clip_key=clip.key,
            field="body_names",
            fix="use clips of this robot with per-body arrays, or change amp.features",
        )
    if clip.joint_names:
        absent = [j for j in joint_names if j not in clip.joint_names]
        if absent and {"joint_pos", "joint_vel"} & set(spec.terms):
            raise MotionDataError(
                f"lacks joints {absent[:3]}{'...' if len(absent) > 3 else ''} of the robot, "
                "needed by the AMP joint features",
                source=clip.source,
                clip_key=clip.key,
                field="joint_names",
            )


def clip_frame_state(
    clip: RawClip, spec: AMPFeatureSpec, joint_names: Sequence[str], fps: float
) -> FrameState:
    """Every frame of a clip, resampled to `fps` (the policy rate), as a (T, ...) FrameState."""
    _require(clip, spec, joint_names)
    times = target_times(clip.num_frames, clip.fps, fps)

    def at(values: np.ndarray | None) -> torch.Tensor | None:
        if values is None:
            return None
        return torch.as_tensor(lerp_at(values, clip.fps, times), dtype=torch.float32)

    order = [clip.joint_names.index(j) for j in joint_names] if clip.joint_names else None
    pick = (lambda a: a[:, order]) if order is not None else (lambda a: a)
    root = clip.body_names.index(spec.root_body) if clip.body_names else 0
    joint_vel = pick(clip.joint_vel) if clip.joint_vel is not None else None
    state = FrameState(
        joint_pos=at(pick(clip.joint_pos)),
        joint_vel=at(joint_vel) if joint_vel is not None else None,
        root_pos=at(clip.root_pos),
        root_quat=torch.as_tensor(slerp_at(clip.root_quat, clip.fps, times), dtype=torch.float32),
        root_lin_vel_w=at(clip.body_lin_vel_w[:, root])
        if clip.body_lin_vel_w is not None
        else None,
        root_ang_vel_w=at(clip.body_ang_vel_w[:, root])
        if clip.body_ang_vel_w is not None
        else None,
    )
    if "foot_contacts" in spec.terms:
        feet = [clip.body_names.index(b) for b in spec.foot_bodies]
        height = at(clip.body_pos_w[:, feet, 2])
        speed = at(np.linalg.norm(clip.body_lin_vel_w[:, feet, :2], axis=-1))
        stance = (height < spec.clip_contact_height) & (speed < spec.clip_contact_speed)
        state.foot_contact = stance.float()
    return state


def clip_features(
    clip: RawClip, spec: AMPFeatureSpec, joint_names: Sequence[str], fps: float
) -> torch.Tensor:
    """(T - k + 1, k * F) windowed features of one clip."""
    state = clip_frame_state(clip, spec, joint_names, fps)
    if state.joint_pos.shape[0] < spec.window:
        raise MotionDataError(
            f"has {state.joint_pos.shape[0]} frames at {fps:g} fps, fewer than the AMP window "
            f"{spec.window}",
            source=clip.source,
            clip_key=clip.key,
        )
    return stack_windows(frame_features(state, spec), spec.window)


def select_clips(clips: Sequence[RawClip], patterns: Sequence[str], source: str) -> list[RawClip]:
    """The clips whose key matches one of the shell patterns (e.g. `walk_forward_*`)."""
    chosen = [c for c in clips if any(fnmatch.fnmatch(c.key, p) for p in patterns)]
    if not chosen:
        keys = ", ".join(sorted(c.key for c in clips)[:8])
        raise AMPFeatureError(
            f"amp.clips {list(patterns)} match no clip of {source} (it has: {keys}...); "
            "set amp.clips to patterns of its clip keys, e.g. amp.clips=['*']"
        )
    return chosen


def expert_features(
    motion_file: str | Path,
    patterns: Sequence[str],
    spec: AMPFeatureSpec,
    joint_names: Sequence[str],
    fps: float,
) -> tuple[torch.Tensor, list[str]]:
    """All windowed expert samples of the chosen clips (M, k * F) and the clip keys used."""
    clips = select_clips(
        read_motion_file(motion_file, len(joint_names)), patterns, str(motion_file)
    )
    feats = [clip_features(c, spec, joint_names, fps) for c in clips]
    return torch.cat(feats, dim=0), [c.key for c in clips]
