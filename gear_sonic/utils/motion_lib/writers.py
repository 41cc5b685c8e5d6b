"""Write RawClips to disk atomically (NPZ one clip per file, SONIC PKL many clips per file)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import joblib
import numpy as np

from gear_sonic.utils.np_quat import wxyz_to_xyzw

from .clip import RawClip
from .errors import MotionDataError


def write_npz(path: str | Path, clip: RawClip) -> None:
    """Write one clip in the mjlab-compatible NPZ layout our reader understands.

    `joint_pos` holds joints only (mjlab style); the root goes to extra `root_pos`/`root_quat`
    arrays so mjlab tools that ignore unknown arrays still load the file.
    """
    arrays: dict[str, np.ndarray] = {
        "fps": np.asarray([clip.fps], dtype=np.float64),
        "joint_pos": clip.joint_pos,
    }
    if clip.joint_names:
        arrays["joint_names"] = np.asarray(clip.joint_names, dtype=str)
    if clip.body_names is not None:
        arrays["body_names"] = np.asarray(clip.body_names, dtype=str)
    for name, value in clip.arrays().items():
        arrays.setdefault(name, value)
    _atomic_write(Path(path), lambda f: np.savez(f, **arrays))


def write_sonic_pkl(
    path: str | Path, clips: Sequence[RawClip], joint_order: Sequence[str] | None = None
) -> None:
    """Write clips as one SONIC PKL ({key: {root_trans_offset, root_rot (xyzw), dof, ...}}).

    SONIC `dof` columns carry no names, so they must already be in the robot's order; pass
    `joint_order` (the robot's joint names) to reorder clips that carry their own joint names.
    """
    data = {}
    for clip in clips:
        if not clip.has_root:
            raise MotionDataError(
                "has no root trajectory, which SONIC PKL requires", source=clip.source,
                clip_key=clip.key, field="root_pos", fix="write it as NPZ instead",
            )
        if clip.key in data:
            raise MotionDataError("appears twice", source=str(path), clip_key=clip.key,
                                  field="key", fix="give every clip a unique key")
        dof = _in_order(clip, joint_order)
        entry = {
            "root_trans_offset": clip.root_pos,
            "root_rot": wxyz_to_xyzw(clip.root_quat),
            "dof": dof,
            # Axis-angle poses are not used by our pipeline; zeros keep the SONIC layout valid.
            "pose_aa": np.zeros((clip.num_frames, dof.shape[1] + 1, 3)),
            "fps": clip.fps,
        }
        if clip.smpl_joints is not None:
            entry["smpl_joints"] = clip.smpl_joints
        data[clip.key] = entry
    _atomic_write(Path(path), lambda f: joblib.dump(data, f))


def _in_order(clip: RawClip, joint_order: Sequence[str] | None) -> np.ndarray:
    if joint_order is None or not clip.joint_names:
        return clip.joint_pos
    missing = [n for n in joint_order if n not in clip.joint_names]
    if missing:
        raise MotionDataError(
            f"lacks joints {missing} required by joint_order", source=clip.source,
            clip_key=clip.key, field="joint_names", fix="export all robot joints",
        )
    return clip.joint_pos[:, [clip.joint_names.index(n) for n in joint_order]]


def _atomic_write(path: Path, dump: Callable) -> None:
    """Write via a temp file in the same directory so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            dump(f)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; motion data is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
