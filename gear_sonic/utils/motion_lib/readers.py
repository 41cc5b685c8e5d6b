"""Read motion files (SONIC PKL, mjlab/BeyondMimic NPZ) into validated RawClips.

Readers are robot-agnostic: they only check that a clip is self-consistent. Mapping joints and
bodies onto a particular robot happens later in the MotionLib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from gear_sonic.utils.np_quat import normalize, xyzw_to_wxyz

from .clip import RawClip
from .errors import MotionDataError
from .safe_pickle import load_motion_pickle

SUPPORTED_SUFFIXES = (".pkl", ".npz")
# Deviations above this are data errors; below it we renormalise silently.
QUAT_NORM_TOL = 1e-3
NUM_ROOT_POS_QUAT_COLS = 7  # xyz + wxyz prepended to joint_pos by some exporters
NUM_ROOT_VEL_COLS = 6  # lin + ang prepended to joint_vel by some exporters
SMPL_SHAPE = (24, 3)


def read_motion_file(
    path: str | Path, num_joints: int | None = None, trust_pickle: bool = False
) -> list[RawClip]:
    """Read one file, or every *.pkl / *.npz below a directory (sorted), into RawClips.

    `num_joints` (the robot's joint count) only disambiguates NPZ `joint_pos` arrays that
    carry no joint names and may or may not start with 7 root columns. PKLs are unpickled
    through an allow-list of motion-data types unless `trust_pickle` (see safe_pickle.py).
    """
    path = Path(path)
    if path.is_dir():
        return [clip for f in list_motion_files(path)
                for clip in read_motion_file(f, num_joints, trust_pickle)]
    if not path.exists():
        raise MotionDataError("file does not exist", source=str(path), fix="check the path")
    if path.suffix == ".pkl":
        return _read_sonic_pkl(path, trust_pickle)
    if path.suffix == ".npz":
        return [_read_npz(path, num_joints)]
    raise MotionDataError(
        f"unsupported suffix '{path.suffix}'",
        source=str(path), fix=f"convert it to one of {SUPPORTED_SUFFIXES}",
    )


def list_motion_files(path: str | Path) -> list[Path]:
    """The motion file itself, or every *.pkl / *.npz below a directory, sorted."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.suffix in SUPPORTED_SUFFIXES and p.is_file())
    if not files:
        raise MotionDataError(
            "directory contains no *.pkl or *.npz motion files",
            source=str(path), fix="point motion_file at a folder with motion files",
        )
    return files


# ---------------------------------------------------------------------------------------------
# SONIC PKL: {key: {root_trans_offset, root_rot (xyzw), dof, pose_aa, fps, [smpl_joints]}}

# RawClip field -> the key that holds it in the file, so errors name what the user sees.
_PKL_FIELD_NAMES = {"joint_pos": "dof", "root_pos": "root_trans_offset", "root_quat": "root_rot"}


def _read_sonic_pkl(path: Path, trust_pickle: bool = False) -> list[RawClip]:
    try:
        data = load_motion_pickle(path, trust_pickle)
    except MotionDataError:
        raise  # a refused global already says which file and class
    except Exception as exc:  # corrupt / truncated pickles raise many different types
        raise MotionDataError(
            f"cannot be unpickled ({type(exc).__name__}: {exc})",
            source=str(path), fix="re-export the file",
        ) from exc
    if not isinstance(data, dict) or not data:
        raise MotionDataError(
            "expected a non-empty dict {clip_key: clip_dict}",
            source=str(path), fix="write the PKL with write_sonic_pkl",
        )
    clips = []
    for key, entry in data.items():
        need = _field_getter(entry, str(path), str(key))
        clip = RawClip(
            key=str(key),
            source=str(path),
            fps=_read_fps(entry, str(path), str(key)),
            joint_names=[],  # SONIC PKL dof columns are in the robot's XML order
            joint_pos=need("dof", ndim=2),
            root_pos=need("root_trans_offset", ndim=2, last=3),
            root_quat=xyzw_to_wxyz(need("root_rot", ndim=2, last=4)),
            smpl_joints=_optional(entry, "smpl_joints", need, ndim=3),
        )
        clips.append(validate_clip(clip, _PKL_FIELD_NAMES))
    return clips


# ---------------------------------------------------------------------------------------------
# NPZ (mjlab / BeyondMimic): one clip per file, key = file stem


def _read_npz(path: Path, num_joints: int | None) -> RawClip:
    key = path.stem
    try:
        with np.load(path, allow_pickle=False) as npz:
            entry = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise MotionDataError(
            f"cannot be read as NPZ ({type(exc).__name__}: {exc})",
            source=str(path), clip_key=key,
            fix="re-export it with numpy.savez; store names as plain str arrays, not objects",
        ) from exc
    need = _field_getter(entry, str(path), key)
    joint_pos = need("joint_pos", ndim=2)
    joint_names = _optional_names(entry, "joint_names", str(path), key)
    root_pos = root_quat = None
    field_names = {}
    if _has_root_columns(joint_pos, joint_names, num_joints):
        field_names = {"root_pos": "joint_pos[:, 0:3]", "root_quat": "joint_pos[:, 3:7]"}
        root_pos = joint_pos[:, 0:3]
        root_quat = joint_pos[:, 3:7]
        joint_pos = joint_pos[:, NUM_ROOT_POS_QUAT_COLS:]
    if joint_names is not None and len(joint_names) == joint_pos.shape[1] + 1:
        joint_names = joint_names[1:]  # drop the leading free-joint name
    if "root_pos" in entry or "root_quat" in entry:
        root_pos = need("root_pos", ndim=2, last=3)
        root_quat = need("root_quat", ndim=2, last=4)
        field_names = {}

    joint_vel = _optional(entry, "joint_vel", need, ndim=2)
    if joint_vel is not None and joint_vel.shape[1] == joint_pos.shape[1] + NUM_ROOT_VEL_COLS:
        joint_vel = joint_vel[:, NUM_ROOT_VEL_COLS:]

    body_names = _optional_names(entry, "body_names", str(path), key)
    body_pos_w = _optional(entry, "body_pos_w", need, ndim=3, last=3)
    body_quat_w = _optional(entry, "body_quat_w", need, ndim=3, last=4)
    if root_pos is None and body_pos_w is not None and body_quat_w is not None:
        root_index = body_names.index("pelvis") if body_names and "pelvis" in body_names else 0
        root_pos = body_pos_w[:, root_index]
        root_quat = body_quat_w[:, root_index]
        field_names = {"root_pos": "body_pos_w", "root_quat": "body_quat_w"}

    clip = RawClip(
        key=key,
        source=str(path),
        fps=_read_fps(entry, str(path), key),
        joint_names=joint_names or [],
        joint_pos=joint_pos,
        root_pos=root_pos,
        root_quat=root_quat,
        joint_vel=joint_vel,
        body_names=body_names,
        body_pos_w=body_pos_w,
        body_quat_w=body_quat_w,
        body_lin_vel_w=_optional(entry, "body_lin_vel_w", need, ndim=3, last=3),
        body_ang_vel_w=_optional(entry, "body_ang_vel_w", need, ndim=3, last=3),
        smpl_joints=_optional(entry, "smpl_joints", need, ndim=3),
    )
    return validate_clip(clip, field_names)


def _has_root_columns(
    joint_pos: np.ndarray, joint_names: list[str] | None, num_joints: int | None
) -> bool:
    cols = joint_pos.shape[1]
    if joint_names is not None:
        # 29 names (+7 root cols) or 30 names incl. the free joint (+7 root cols).
        return cols - len(joint_names) in (NUM_ROOT_POS_QUAT_COLS, NUM_ROOT_POS_QUAT_COLS - 1)
    if num_joints is not None:
        return cols == num_joints + NUM_ROOT_POS_QUAT_COLS
    # No names, no hint: columns 3:7 form a (roughly) unit quaternion in every frame only if
    # they are a root orientation; exact unit-norm is enforced later by validate_clip.
    if cols <= NUM_ROOT_POS_QUAT_COLS or not np.all(np.isfinite(joint_pos[:, 3:7])):
        return False
    return bool(np.all(np.abs(np.linalg.norm(joint_pos[:, 3:7], axis=-1) - 1.0) < 0.1))


# ---------------------------------------------------------------------------------------------
# Field access helpers


def _field_getter(entry: Any, source: str, key: str) -> Callable[..., np.ndarray]:
    if not isinstance(entry, dict):
        raise MotionDataError(
            f"clip entry is a {type(entry).__name__}, expected a dict of arrays",
            source=source, clip_key=key, fix="store each clip as a dict of arrays",
        )

    def need(field: str, ndim: int, last: int | None = None) -> np.ndarray:
        if field not in entry:
            raise MotionDataError(
                f"required key '{field}' is missing (present: {sorted(entry)})",
                source=source, clip_key=key, field=field, fix=f"add '{field}' to the clip",
            )
        try:
            value = np.asarray(entry[field], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MotionDataError(
                f"is not a numeric array ({exc})", source=source, clip_key=key, field=field,
                fix="store it as a float array",
            ) from exc
        if value.ndim != ndim or (last is not None and value.shape[-1] != last):
            want = f"{ndim}-D" + (f" with last dim {last}" if last is not None else "")
            raise MotionDataError(
                f"has shape {value.shape}, expected {want}",
                source=source, clip_key=key, field=field, fix="re-export with the right layout",
            )
        return value

    return need


def _optional(entry: dict, field: str, need: Callable[..., np.ndarray], **kw) -> np.ndarray | None:
    return need(field, **kw) if entry.get(field) is not None else None


def _optional_names(entry: dict, field: str, source: str, key: str) -> list[str] | None:
    if field not in entry:
        return None
    names = np.asarray(entry[field])
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise MotionDataError(
            f"must be a 1-D array of strings, got dtype {names.dtype} shape {names.shape}",
            source=source, clip_key=key, field=field, fix="save it as np.array(list_of_str)",
        )
    return [str(n) for n in names]


def _read_fps(entry: dict, source: str, key: str) -> float:
    if entry.get("fps") is None:
        raise MotionDataError(
            "required key 'fps' is missing; the frame rate is never guessed",
            source=source, clip_key=key, field="fps", fix="store the capture rate as 'fps'",
        )
    fps = np.asarray(entry["fps"], dtype=np.float64).reshape(-1)
    if fps.size != 1 or not np.isfinite(fps[0]) or fps[0] <= 0:
        raise MotionDataError(
            f"must be one finite number > 0, got {fps.tolist()}",
            source=source, clip_key=key, field="fps", fix="store the real capture rate",
        )
    return float(fps[0])


# ---------------------------------------------------------------------------------------------
# Clip-level validation (shared by all formats and by the writers)


def validate_clip(clip: RawClip, field_names: dict[str, str] | None = None) -> RawClip:
    """Check a clip for internal consistency; renormalises near-unit quaternions in place.

    `field_names` maps RawClip fields to the keys used in the file, for error messages.
    """
    where = dict(source=clip.source, clip_key=clip.key)

    def label(name: str) -> str:
        return (field_names or {}).get(name, name)

    if not np.isfinite(clip.fps) or clip.fps <= 0:
        raise MotionDataError(f"must be finite and > 0, got {clip.fps}", field="fps", **where,
                              fix="store the real capture rate")
    arrays = clip.arrays()
    num_frames = clip.num_frames
    for name, value in arrays.items():
        if value.shape[0] != num_frames:
            raise MotionDataError(
                f"has {value.shape[0]} frames but {label('joint_pos')} has {num_frames}",
                field=label(name), **where, fix="export all arrays on the same time grid",
            )
        bad = ~np.isfinite(value)
        if bad.any():
            kind = "NaN" if np.isnan(value).any() else "inf"
            frame = int(np.argwhere(bad)[0][0])
            raise MotionDataError(f"contains {kind} (first at frame {frame})", field=label(name),
                                  **where, fix="repair or drop the clip")
    if num_frames < 2:
        raise MotionDataError(f"has {num_frames} frame(s); at least 2 are needed",
                              field=label("joint_pos"), **where,
                              fix="drop the clip or export more frames")
    _check_names(clip.joint_names, clip.joint_pos.shape[1], "joint_names", where, allow_empty=True)
    _check_body_arrays_complete(clip, where)
    if clip.body_pos_w is not None:
        if clip.body_names is not None:
            _check_names(clip.body_names, clip.body_pos_w.shape[1], "body_names", where)
        for name in ("body_quat_w", "body_lin_vel_w", "body_ang_vel_w"):
            value = arrays.get(name)
            if value is not None and value.shape[1] != clip.body_pos_w.shape[1]:
                raise MotionDataError(
                    f"has {value.shape[1]} bodies but body_pos_w has {clip.body_pos_w.shape[1]}",
                    field=name, **where, fix="export all body arrays for the same bodies",
                )
    if clip.joint_vel is not None and clip.joint_vel.shape[1] != clip.joint_pos.shape[1]:
        raise MotionDataError(
            f"has {clip.joint_vel.shape[1]} columns but joint_pos has {clip.joint_pos.shape[1]}",
            field="joint_vel", **where, fix="export velocities for the same joints",
        )
    if clip.smpl_joints is not None and clip.smpl_joints.shape[1:] != SMPL_SHAPE:
        raise MotionDataError(f"has shape {clip.smpl_joints.shape}, expected (T, 24, 3)",
                              field="smpl_joints", **where, fix="store the 24 SMPL joint positions")
    for name in ("root_quat", "body_quat_w"):
        if getattr(clip, name) is not None:
            setattr(clip, name, _unit_quats(getattr(clip, name), label(name), where))
    return clip


def _check_body_arrays_complete(clip: RawClip, where: dict) -> None:
    """Body data is only usable as a pose pair; a lone array would silently be ignored."""
    if clip.body_pos_w is None and clip.body_quat_w is None:
        extra = [n for n in ("body_lin_vel_w", "body_ang_vel_w") if getattr(clip, n) is not None]
        if extra:
            raise MotionDataError("is stored without body_pos_w/body_quat_w", field=extra[0],
                                  **where, fix="store body poses too, or drop the velocities")
        return
    missing = "body_quat_w" if clip.body_quat_w is None else "body_pos_w"
    if getattr(clip, missing) is None:
        raise MotionDataError(
            "is missing while its partner array is present", field=missing, **where,
            fix="store both body_pos_w and body_quat_w, or neither",
        )


def _check_names(names, count, field, where, allow_empty=False):
    if allow_empty and not names:
        return
    if len(names) != count:
        raise MotionDataError(
            f"lists {len(names)} names but the data has {count} columns",
            field=field, **where, fix="store one name per column, in column order",
        )
    if len(set(names)) != len(names):
        raise MotionDataError("contains duplicate names", field=field, **where,
                              fix="make the names unique")


def _unit_quats(quats: np.ndarray, field: str, where: dict) -> np.ndarray:
    error = np.abs(np.linalg.norm(quats, axis=-1) - 1.0)
    if error.max() >= QUAT_NORM_TOL:
        frame = int(np.unravel_index(np.argmax(error), error.shape)[0])
        raise MotionDataError(
            f"quaternions are not unit-norm (|norm - 1| = {error.max():.3g} at frame {frame})",
            field=field, **where, fix="normalise the quaternions (wxyz) before saving",
        )
    return normalize(quats)
