"""Minimal BVH reader/writer and forward kinematics (hierarchy + motion, any Euler order).

Rotation channels are applied in the order they are listed (intrinsic), as in the BVH
convention: channels `Zrotation Xrotation Yrotation` give R = Rz @ Rx @ Ry. End Sites become
channel-less joints named `<parent>_End` so their positions are available to the retargeter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from gear_sonic.utils.motion_lib import MotionDataError

_POS_CHANNELS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}
_ROT_CHANNELS = {"Xrotation": "X", "Yrotation": "Y", "Zrotation": "Z"}


@dataclass
class BvhJoint:
    name: str
    parent: int  # -1 for the root
    offset: np.ndarray  # (3,) in file units
    channels: list[str] = field(default_factory=list)


@dataclass
class Bvh:
    joints: list[BvhJoint]
    frame_time: float
    motion: np.ndarray  # (T, total channels), degrees / file units
    source: str = "<memory>"

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def index(self, name: str) -> int:
        return self.names.index(name)


def _error(path: str, problem: str, fix: str = "re-export the BVH file") -> MotionDataError:
    return MotionDataError(problem, source=path, fix=fix)


def read_bvh(path: str | Path) -> Bvh:
    """Parse a BVH file; every format problem raises MotionDataError naming the file."""
    path = str(path)
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(path, f"cannot be read ({exc})") from exc
    tokens = text.split()
    pos = 0

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise _error(path, "ends inside the HIERARCHY section (truncated file)")
        pos += 1
        return tokens[pos - 1]

    def expect(word: str) -> None:
        got = take()
        if got != word:
            raise _error(path, f"expected '{word}' in HIERARCHY, found '{got}'")

    def floats(n: int) -> np.ndarray:
        try:
            return np.array([float(take()) for _ in range(n)])
        except ValueError as exc:
            raise _error(path, f"bad number in HIERARCHY ({exc})") from exc

    expect("HIERARCHY")
    joints: list[BvhJoint] = []
    stack: list[int] = []
    word = take()
    if word != "ROOT":
        raise _error(path, f"expected 'ROOT' after HIERARCHY, found '{word}'")
    while True:
        if word in ("ROOT", "JOINT"):
            name = take()
            expect("{")
            expect("OFFSET")
            joint = BvhJoint(name, stack[-1] if stack else -1, floats(3))
            expect("CHANNELS")
            try:
                count = int(take())
            except ValueError as exc:
                raise _error(path, f"joint '{name}': bad CHANNELS count") from exc
            joint.channels = [take() for _ in range(count)]
            bad = [c for c in joint.channels if c not in _POS_CHANNELS and c not in _ROT_CHANNELS]
            if bad:
                raise _error(path, f"joint '{name}' has unknown channels {bad}")
            joints.append(joint)
            stack.append(len(joints) - 1)
        elif word == "End":
            expect("Site")
            expect("{")
            expect("OFFSET")
            parent = stack[-1]
            joints.append(BvhJoint(f"{joints[parent].name}_End", parent, floats(3)))
            expect("}")
        elif word == "}":
            stack.pop()
            if not stack:
                break
        else:
            raise _error(path, f"unexpected token '{word}' in HIERARCHY")
        word = take()

    if pos >= len(tokens) or tokens[pos] != "MOTION":
        raise _error(path, "has no MOTION section (truncated file?)")
    header = tokens[pos:pos + 6]
    if len(header) < 6 or header[1] != "Frames:" or header[3:5] != ["Frame", "Time:"]:
        raise _error(path, "MOTION header must be 'Frames: N' then 'Frame Time: dt'")
    try:
        num_frames, frame_time = int(header[2]), float(header[5])
    except ValueError as exc:
        raise _error(path, f"bad MOTION header ({exc})") from exc
    if num_frames < 1 or not frame_time > 0:
        raise _error(path, f"MOTION header has {num_frames} frames, frame time {frame_time}")
    num_channels = sum(len(j.channels) for j in joints)
    values = tokens[pos + 6:]
    expected = num_frames * num_channels
    if len(values) != expected:
        raise _error(
            path, f"MOTION section has {len(values)} values, expected {num_frames} frames x "
            f"{num_channels} channels = {expected} (truncated or corrupt file)",
            fix="re-export the file or fix the 'Frames:' count")
    try:
        motion = np.array(values, dtype=np.float64).reshape(num_frames, num_channels)
    except ValueError as exc:
        raise _error(path, f"bad number in MOTION ({exc})") from exc
    return Bvh(joints, frame_time, motion, path)


def forward_kinematics(bvh: Bvh) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions (T, J, 3) in file units and rotations (T, J, 3, 3)."""
    num_frames, num_joints = bvh.num_frames, len(bvh.joints)
    pos = np.zeros((num_frames, num_joints, 3))
    rot = np.zeros((num_frames, num_joints, 3, 3))
    column = 0
    for j, joint in enumerate(bvh.joints):
        local_t = np.broadcast_to(joint.offset, (num_frames, 3)).copy()
        order, angles = "", []
        for channel in joint.channels:
            values = bvh.motion[:, column]
            column += 1
            if channel in _POS_CHANNELS:
                # Position channels replace the offset (the usual root convention).
                local_t[:, _POS_CHANNELS[channel]] = values
            else:
                order += _ROT_CHANNELS[channel]
                angles.append(values)
        local_r = (Rotation.from_euler(order, np.stack(angles, axis=1), degrees=True).as_matrix()
                   if order else np.broadcast_to(np.eye(3), (num_frames, 3, 3)))
        if joint.parent < 0:
            pos[:, j], rot[:, j] = local_t, local_r
        else:
            parent_r = rot[:, joint.parent]
            pos[:, j] = pos[:, joint.parent] + np.einsum("tij,tj->ti", parent_r, local_t)
            rot[:, j] = parent_r @ local_r
    return pos, rot


def write_bvh(path: str | Path, bvh: Bvh) -> None:
    """Write a Bvh (joints named `<parent>_End` without channels are written as End Sites)."""
    children: dict[int, list[int]] = {i: [] for i in range(-1, len(bvh.joints))}
    for i, joint in enumerate(bvh.joints):
        children[joint.parent].append(i)
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        joint, pad = bvh.joints[j], "  " * depth
        offset = " ".join(f"{v:.6f}" for v in joint.offset)
        if not joint.channels and joint.parent >= 0 and not children[j]:
            lines.extend([f"{pad}End Site", f"{pad}{{", f"{pad}  OFFSET {offset}", f"{pad}}}"])
            return
        kind = "ROOT" if joint.parent < 0 else "JOINT"
        lines.extend([f"{pad}{kind} {joint.name}", f"{pad}{{", f"{pad}  OFFSET {offset}",
                      f"{pad}  CHANNELS {len(joint.channels)} {' '.join(joint.channels)}"])
        for child in children[j]:
            emit(child, depth + 1)
        lines.append(f"{pad}}}")

    emit(children[-1][0], 0)
    lines += ["MOTION", f"Frames: {bvh.num_frames}", f"Frame Time: {bvh.frame_time:.8f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in bvh.motion]
    Path(path).write_text("\n".join(lines) + "\n")
