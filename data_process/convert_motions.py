"""Convert robot motion clips between SONIC PKL, mjlab NPZ, LAFAN1 CSV and our own CSV.

Formats (read: detected from the suffix and, for CSV, the header; write: --to or OUT's suffix):

  pkl        SONIC PKL: joblib dict {clip_key: {root_trans_offset (T,3), root_rot (T,4) xyzw,
             dof (T,J) robot XML order, pose_aa, fps, [smpl_joints]}}; many clips per file.
  npz        mjlab / BeyondMimic NPZ, one clip per file (key = file stem): fps, joint_pos
             (T,J) or (T,7+J) with root xyz+wxyz first, optional joint_names / body_names,
             root_pos, root_quat (wxyz), joint_vel, body_pos_w, body_quat_w, body_*_vel_w.
             Written with joint_names, body states by forward kinematics and velocities.
  lafan_csv  Unitree-retargeted LAFAN1 CSV: no header, 30 fps rows of root x,y,z, root quat
             qx,qy,qz,qw, then the robot's joints (rad) in XML order. Always written at 30 fps.
  csv        Our CSV, one clip per file: header `time,root_x,root_y,root_z,root_qw,root_qx,
             root_qy,root_qz,<joint names>`, one row per frame; fps from the time column;
             columns are matched by joint name, so any order works.

Joints are mapped to the robot by name (unnamed columns are in robot XML order), clips are
resampled to --fps (lerp; slerp for rotations) and missing velocities are recomputed.
OUT ending in a suffix is one file (only PKL holds several clips); otherwise OUT is a folder
that gets one file per clip. Bad input: one line on stderr naming file and clip, exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Runnable as a plain script from a checkout without installing the package.
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from gear_sonic.utils.motion_lib import (  # noqa: E402
    MotionDataError,
    RawClip,
    RobotKinematics,
    read_motion_file,
    write_npz,
    write_sonic_pkl,
)
from gear_sonic.utils.motion_lib.conversion import joint_columns  # noqa: E402
from gear_sonic.utils.motion_lib.csv_formats import (  # noqa: E402
    LAFAN_FPS,
    check_joint_units,
    read_csv_motion,
    write_lafan_csv,
    write_plain_csv,
)
from gear_sonic.utils.motion_lib.resample import lerp_at, slerp_at, target_times  # noqa: E402
from gear_sonic.utils.motion_lib.safe_pickle import TRUST_PICKLE_HELP  # noqa: E402
from gear_sonic.utils.np_quat import angular_velocity, linear_velocity  # noqa: E402

FORMATS = ("npz", "pkl", "csv", "lafan_csv")
INPUT_SUFFIXES = (".pkl", ".npz", ".csv")
SUFFIX_OF = {"npz": ".npz", "pkl": ".pkl", "csv": ".csv", "lafan_csv": ".csv"}
DEFAULT_FPS = 50.0


@lru_cache(maxsize=None)
def robot_kinematics(robot: str) -> RobotKinematics:
    """FK for the robot (cached per process: every joblib worker builds it once)."""
    if robot != "g1":
        raise MotionDataError(f"unknown robot '{robot}'", fix="use --robot g1")
    from data_process.motion_gen.robot import load_model  # finds g1.xml without importing mjlab

    return RobotKinematics(load_model(with_floor=False))


def input_files(path: str | Path) -> list[Path]:
    """The file itself, or every motion file below a folder (sorted)."""
    path = Path(path)
    if not path.exists():
        raise MotionDataError("does not exist", source=str(path), fix="check the path")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.suffix in INPUT_SUFFIXES and p.is_file())
    if not files:
        raise MotionDataError(f"folder holds no {INPUT_SUFFIXES} files", source=str(path),
                              fix="point at a motion file or a folder of them")
    return files


def read_clips(path: Path, kin: RobotKinematics, trust_pickle: bool = False) -> list[RawClip]:
    """All clips of one file, in the file's own joint order, with a degrees check."""
    if path.suffix == ".csv":
        clips = [read_csv_motion(path, kin.joint_names)]
    else:
        clips = read_motion_file(path, num_joints=kin.num_joints, trust_pickle=trust_pickle)
    for clip in clips:
        check_joint_units(clip)
    return clips


def to_robot(clip: RawClip, kin: RobotKinematics, fps: float, with_bodies: bool) -> RawClip:
    """Robot joint order, resampled to `fps`, velocities (and FK body states) filled in."""
    if not clip.has_root:
        raise MotionDataError("has no root trajectory", source=clip.source, clip_key=clip.key,
                              field="root_pos", fix="store root_pos/root_quat or body poses")
    times = target_times(clip.num_frames, clip.fps, fps)
    cols = joint_columns(clip, kin.joint_names)
    joint_pos = lerp_at(clip.joint_pos[:, cols], clip.fps, times)
    root_pos = lerp_at(clip.root_pos, clip.fps, times)
    root_quat = slerp_at(clip.root_quat, clip.fps, times)
    # Stored velocities are only trusted on their own grid; otherwise differentiate.
    if clip.joint_vel is not None and np.isclose(clip.fps, fps):
        joint_vel = clip.joint_vel[:, cols]
    else:
        joint_vel = linear_velocity(joint_pos, times)
    out = RawClip(
        key=clip.key, source=clip.source, fps=float(fps), joint_names=list(kin.joint_names),
        joint_pos=joint_pos, root_pos=root_pos, root_quat=root_quat, joint_vel=joint_vel,
        smpl_joints=None if clip.smpl_joints is None else lerp_at(clip.smpl_joints, clip.fps,
                                                                  times),
    )
    if with_bodies:
        out.body_names = list(kin.body_names)
        out.body_pos_w, out.body_quat_w = kin.forward(root_pos, root_quat, joint_pos)
        out.body_lin_vel_w = linear_velocity(out.body_pos_w, times)
        out.body_ang_vel_w = angular_velocity(out.body_quat_w, times)
    return out


def safe_name(key: str) -> str:
    """Clip keys may contain path separators (SONIC keys often do); keep files flat."""
    return key.replace("/", "__").replace("\\", "__")


def write_clip(path: Path, clip: RawClip, fmt: str) -> None:
    if fmt == "npz":
        write_npz(path, clip)
    elif fmt == "pkl":
        write_sonic_pkl(path, [clip])
    elif fmt == "csv":
        write_plain_csv(path, clip, clip.joint_names)
    else:
        write_lafan_csv(path, clip)


def convert_file(path: Path, robot: str, fps: float, fmt: str, out_dir: Path | None,
                 trust_pickle: bool = False) -> list[RawClip] | list[str]:
    """Worker: convert one input file; writes per-clip files when `out_dir` is given."""
    try:
        kin = robot_kinematics(robot)
        clips = [to_robot(c, kin, fps, with_bodies=fmt == "npz")
                 for c in read_clips(path, kin, trust_pickle)]
    except MotionDataError:
        raise
    except Exception as exc:  # anything else is still a bad file, reported the same way
        raise MotionDataError(f"cannot be converted ({type(exc).__name__}: {exc})",
                              source=str(path), fix="check the file's format") from exc
    if out_dir is None:
        return clips
    written = []
    for clip in clips:
        target = out_dir / (safe_name(clip.key) + SUFFIX_OF[fmt])
        write_clip(target, clip, fmt)
        written.append(str(target))
    return written


def output_format(out: Path, to: str | None) -> tuple[str, bool]:
    """(format, OUT is a folder) from --to and OUT's suffix."""
    is_dir = out.is_dir() or out.suffix == ""
    if to is not None:
        if not is_dir and out.suffix != SUFFIX_OF[to]:
            raise MotionDataError(f"suffix '{out.suffix}' does not match --to {to}",
                                  source=str(out), fix=f"name it *{SUFFIX_OF[to]} or a folder")
        return to, is_dir
    if is_dir:
        raise MotionDataError("is a folder, so the output format is unknown", source=str(out),
                              fix=f"pass --to one of {FORMATS}")
    by_suffix = {".npz": "npz", ".pkl": "pkl", ".csv": "csv"}
    if out.suffix not in by_suffix:
        raise MotionDataError(f"unknown output suffix '{out.suffix}'", source=str(out),
                              fix=f"use .npz, .pkl or .csv, or pass --to one of {FORMATS}")
    return by_suffix[out.suffix], False


def run_jobs(files: list[Path], jobs: int, task, args: tuple, show_progress: bool) -> list:
    """Run `task(file, *args)` over files with joblib, showing a rich progress bar on stderr."""
    from joblib import Parallel, delayed
    from rich.console import Console
    from rich.progress import Progress

    if jobs != 1:
        # loky workers start fresh interpreters: give them the checkout on their import path.
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    results = []
    with Progress(console=Console(stderr=True), disable=not show_progress,
                  transient=True) as progress:
        bar = progress.add_task("converting", total=len(files))
        parallel = Parallel(n_jobs=jobs, return_as="generator")
        for result in parallel(delayed(task)(f, *args) for f in files):
            results.append(result)
            progress.advance(bar)
    return results


def convert(inp: str, out: str, fps: float | None, robot: str, to: str | None, jobs: int | None,
            show_progress: bool = True, trust_pickle: bool = False) -> list[str]:
    """Convert IN to OUT; returns the written paths."""
    out_path = Path(out)
    fmt, is_dir = output_format(out_path, to)
    if fmt == "lafan_csv" and fps not in (None, LAFAN_FPS):
        raise MotionDataError(f"--fps {fps:g} is not possible", field="lafan_csv",
                              fix=f"LAFAN CSV rows are {LAFAN_FPS:g} fps; drop --fps")
    fps = LAFAN_FPS if fmt == "lafan_csv" else (fps or DEFAULT_FPS)
    files = input_files(inp)
    jobs = jobs or max(1, min(len(files), os.cpu_count() or 1))
    if is_dir:
        out_path.mkdir(parents=True, exist_ok=True)
        results = run_jobs(files, jobs, convert_file, (robot, fps, fmt, out_path, trust_pickle),
                           show_progress)
        written = [p for paths in results for p in paths]
        if len(set(written)) != len(written):
            dup = sorted({p for p in written if written.count(p) > 1})
            raise MotionDataError(f"clip keys collide in the output folder: {dup}",
                                  source=str(inp), fix="give every clip a unique key")
        return written
    results = run_jobs(files, jobs, convert_file, (robot, fps, fmt, None, trust_pickle),
                       show_progress)
    clips = [c for cs in results for c in cs]
    if fmt == "pkl":
        write_sonic_pkl(out_path, clips)
    elif len(clips) != 1:
        raise MotionDataError(f"holds {len(clips)} clips but {fmt} stores one clip per file",
                              source=str(inp), fix="give a folder as OUT (one file per clip)")
    else:
        write_clip(out_path, clips[0], fmt)
    return [str(out_path)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inp", metavar="IN", help="motion file (.pkl/.npz/.csv) or a folder")
    parser.add_argument("out", metavar="OUT", help="output file, or a folder (one file per clip)")
    parser.add_argument("--fps", type=float, default=None,
                        help=f"output frame rate (default {DEFAULT_FPS:g}; lafan_csv: 30)")
    parser.add_argument("--robot", choices=["g1"], default="g1", help="robot model (joint names)")
    parser.add_argument("--to", choices=FORMATS, default=None,
                        help="output format (default: from OUT's suffix; .csv means csv)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="parallel worker processes (default: one per file, up to #CPUs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    parser.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    args = parser.parse_args(argv)
    try:
        written = convert(args.inp, args.out, args.fps, args.robot, args.to, args.jobs,
                          show_progress=not args.quiet, trust_pickle=args.trust_pickle)
    except MotionDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"wrote {len(written)} file(s) to {args.out}")
    return 0


if __name__ == "__main__":
    # Run through the importable module so joblib workers can unpickle its functions by name.
    from data_process import convert_motions

    sys.exit(convert_motions.main())
