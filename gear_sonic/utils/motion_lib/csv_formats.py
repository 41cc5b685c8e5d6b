"""CSV motion formats: Unitree-retargeted LAFAN1 rows and our own self-describing per-clip CSV.

LAFAN1 CSV (Unitree retargeting, e.g. `walk1_subject1.csv`): no header, one row per frame at
30 fps; columns `root_x, root_y, root_z, root_qx, root_qy, root_qz, root_qw` (quaternion xyzw)
followed by the robot's joint angles (rad) in its XML order (29 columns for the G1).

Our CSV: a header row `time, root_x, root_y, root_z, root_qw, root_qx, root_qy, root_qz,
<joint names...>` (quaternion wxyz, angles in rad, positions in m), one row per frame; the
frame rate comes from the (uniform) `time` column, so any joint order and rate round-trips.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from gear_sonic.utils.np_quat import wxyz_to_xyzw, xyzw_to_wxyz

from .clip import RawClip
from .errors import MotionDataError
from .readers import validate_clip
from .writers import _atomic_write

LAFAN_FPS = 30.0
LAFAN_ROOT_COLS = 7
PLAIN_ROOT_COLUMNS = ("time", "root_x", "root_y", "root_z", "root_qw", "root_qx", "root_qy",
                      "root_qz")
# Relative jitter allowed in the time column before we refuse to infer one fps from it.
TIME_GRID_TOL = 1e-3


def is_plain_csv(path: str | Path) -> bool:
    """Our CSV starts with a header naming `time`; LAFAN CSV starts with numbers."""
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        first = f.readline()
    return first.split(",")[0].strip().lower() == "time"


def read_csv_motion(path: str | Path, joint_names: Sequence[str]) -> RawClip:
    """Read either CSV flavour (detected by the header); LAFAN columns get `joint_names`."""
    if is_plain_csv(path):
        return read_plain_csv(path)
    return read_lafan_csv(path, joint_names)


def _load_rows(path: Path, skip_header: bool, num_cols: int | None) -> np.ndarray:
    """Numeric rows as (T, C); ragged or non-numeric rows are reported with their line."""
    key = path.stem
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MotionDataError(f"cannot be read ({exc})", source=str(path), clip_key=key,
                              fix="check the file") from exc
    start = 1 if skip_header else 0
    rows = []
    for line_no, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        cells = line.split(",")
        if num_cols is None:
            num_cols = len(cells)
        if len(cells) != num_cols:
            raise MotionDataError(
                f"line {line_no} has {len(cells)} columns, expected {num_cols} (truncated file?)",
                source=str(path), clip_key=key, fix="re-export the file completely",
            )
        try:
            rows.append([float(c) for c in cells])
        except ValueError as exc:
            raise MotionDataError(f"line {line_no} is not numeric ({exc})", source=str(path),
                                  clip_key=key, fix="store plain decimal numbers") from exc
    if not rows:
        raise MotionDataError("contains no data rows", source=str(path), clip_key=key,
                              fix="re-export the file")
    return np.asarray(rows, dtype=np.float64)


def read_lafan_csv(path: str | Path, joint_names: Sequence[str], fps: float = LAFAN_FPS) -> RawClip:
    path = Path(path)
    data = _load_rows(path, skip_header=False, num_cols=None)
    want = LAFAN_ROOT_COLS + len(joint_names)
    if data.shape[1] != want:
        raise MotionDataError(
            f"has {data.shape[1]} columns, expected {want} (root xyz, quat xyzw, "
            f"{len(joint_names)} joints)", source=str(path), clip_key=path.stem,
            fix="export one row per frame with every robot joint in XML order",
        )
    clip = RawClip(
        key=path.stem, source=str(path), fps=fps, joint_names=list(joint_names),
        joint_pos=data[:, LAFAN_ROOT_COLS:], root_pos=data[:, 0:3],
        root_quat=xyzw_to_wxyz(data[:, 3:7]),  # xyzw on disk -> wxyz inside
    )
    return validate_clip(clip, {"root_pos": "columns 0:3", "root_quat": "columns 3:7 (xyzw)"})


def read_plain_csv(path: str | Path) -> RawClip:
    path = Path(path)
    key = path.stem
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        header = [h.strip() for h in f.readline().split(",")]
    if tuple(header[:len(PLAIN_ROOT_COLUMNS)]) != PLAIN_ROOT_COLUMNS:
        raise MotionDataError(
            f"header starts with {header[:len(PLAIN_ROOT_COLUMNS)]}, expected "
            f"{list(PLAIN_ROOT_COLUMNS)}", source=str(path), clip_key=key, field="header",
            fix="write the documented header, then the joint names",
        )
    data = _load_rows(path, skip_header=True, num_cols=len(header))
    clip = RawClip(
        key=key, source=str(path), fps=_fps_from_times(data[:, 0], str(path), key),
        joint_names=header[len(PLAIN_ROOT_COLUMNS):], joint_pos=data[:, 8:],
        root_pos=data[:, 1:4], root_quat=data[:, 4:8],
    )
    return validate_clip(clip, {"root_pos": "root_x..root_z", "root_quat": "root_qw..root_qz",
                                "joint_names": "header"})


def _fps_from_times(times: np.ndarray, source: str, key: str) -> float:
    where = dict(source=source, clip_key=key, field="time")
    if times.size < 2 or not np.all(np.isfinite(times)):
        raise MotionDataError("needs at least 2 finite values", **where,
                              fix="write one time stamp (s) per frame")
    steps = np.diff(times)
    step = float(np.median(steps))
    if step <= 0 or np.max(np.abs(steps - step)) > TIME_GRID_TOL * step + 1e-9:
        raise MotionDataError(
            f"is not a uniform increasing grid (steps {steps.min():.6g}..{steps.max():.6g} s)",
            **where, fix="resample to a fixed rate before exporting",
        )
    fps = 1.0 / step
    # Snap to the nearest rate with 3 decimals: text round-off must not create 29.99997 fps.
    return float(round(fps, 3)) if abs(fps - round(fps, 3)) < 1e-6 * fps else fps


def write_lafan_csv(path: str | Path, clip: RawClip) -> None:
    """Rows of root xyz, quat xyzw, joints; the caller supplies a 30 fps robot-ordered clip."""
    if not clip.has_root:
        raise MotionDataError("has no root trajectory, which LAFAN CSV requires",
                              source=clip.source, clip_key=clip.key, field="root_pos",
                              fix="write it as NPZ instead")
    if not math.isclose(clip.fps, LAFAN_FPS):
        raise MotionDataError(f"is at {clip.fps:g} fps; LAFAN CSV rows are {LAFAN_FPS:g} fps",
                              source=clip.source, clip_key=clip.key, field="fps",
                              fix=f"resample to {LAFAN_FPS:g} fps first")
    rows = np.hstack([clip.root_pos, wxyz_to_xyzw(clip.root_quat), clip.joint_pos])
    _write_rows(Path(path), rows, header=None)


def write_plain_csv(path: str | Path, clip: RawClip, joint_names: Sequence[str]) -> None:
    """Our documented CSV; `joint_names` label the clip's joint columns (its own order)."""
    if not clip.has_root:
        raise MotionDataError("has no root trajectory, which our CSV requires",
                              source=clip.source, clip_key=clip.key, field="root_pos",
                              fix="write it as NPZ instead")
    times = np.arange(clip.num_frames) / clip.fps
    rows = np.hstack([times[:, None], clip.root_pos, clip.root_quat, clip.joint_pos])
    _write_rows(Path(path), rows, header=list(PLAIN_ROOT_COLUMNS) + list(joint_names))


def _write_rows(path: Path, rows: np.ndarray, header: list[str] | None) -> None:
    buf = io.StringIO()
    if header is not None:
        buf.write(",".join(header) + "\n")
    # %.9g keeps float32-level data exact and float64 to ~1e-9, far below resampling error.
    np.savetxt(buf, rows, fmt="%.9g", delimiter=",")
    text = buf.getvalue().encode("utf-8")
    _atomic_write(path, lambda f: f.write(text))


def check_joint_units(clip: RawClip) -> None:
    """Joint angles beyond 2 pi are almost surely degrees; a robot joint never spans that."""
    worst = float(np.max(np.abs(clip.joint_pos))) if clip.joint_pos.size else 0.0
    if worst > 2.0 * math.pi:
        col = int(np.argmax(np.max(np.abs(clip.joint_pos), axis=0)))
        name = clip.joint_names[col] if clip.joint_names else f"column {col}"
        raise MotionDataError(
            f"joint angle {worst:.3g} ({name}) exceeds 2*pi; the angles look like degrees",
            source=clip.source, clip_key=clip.key, field="joint_pos",
            fix="convert joint angles to radians (np.deg2rad) before converting",
        )
