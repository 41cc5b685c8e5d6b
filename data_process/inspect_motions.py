"""Print one line per motion clip: frames, fps, duration, SMPL presence and FK consistency.

Usage: python data_process/inspect_motions.py PATH [--json] [--robot g1]
Exit status 2 (message on stderr, no traceback) when the data is invalid.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

# Runnable as a plain script from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mujoco  # noqa: E402

from gear_sonic.utils.motion_lib import (  # noqa: E402
    MotionDataError,
    RobotKinematics,
    fk_max_error,
    read_motion_file,
)
from gear_sonic.utils.motion_lib.safe_pickle import TRUST_PICKLE_HELP  # noqa: E402


def g1_xml_path() -> Path:
    """Path of mjlab's G1 model.

    Importing mjlab's asset zoo takes seconds (it pulls in torch and warp), so look for the
    file where g1_constants keeps it first, and fall back to the import if it moved.
    """
    spec = importlib.util.find_spec("mjlab")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidate = Path(root) / "asset_zoo" / "robots" / "unitree_g1" / "xmls" / "g1.xml"
            if candidate.is_file():
                return candidate
    from mjlab.asset_zoo.robots.unitree_g1.g1_constants import G1_XML

    return Path(G1_XML)


def load_robot_model(robot: str) -> mujoco.MjModel:
    if robot == "g1":
        return mujoco.MjModel.from_xml_path(str(g1_xml_path()))
    raise ValueError(f"unknown robot '{robot}'")


def describe_clips(path: str, robot: str, trust_pickle: bool = False) -> list[dict]:
    kin = RobotKinematics(load_robot_model(robot))
    rows = []
    for clip in read_motion_file(path, num_joints=kin.num_joints, trust_pickle=trust_pickle):
        rows.append({
            "key": clip.key,
            "frames": clip.num_frames,
            "fps": clip.fps,
            "duration_s": clip.duration_s,
            "has_smpl": clip.smpl_joints is not None,
            "fk_max_err_m": fk_max_error(clip, kin),
        })
    return rows


def format_row(row: dict) -> str:
    fk = "n/a (no bodies stored)" if row["fk_max_err_m"] is None else f"{row['fk_max_err_m']:.2e}"
    return (
        f"{row['key']}: {row['frames']} frames @ {row['fps']:g} fps = {row['duration_s']:.2f} s, "
        f"smpl={'yes' if row['has_smpl'] else 'no'}, fk_max_err_m={fk}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="motion file (.pkl/.npz) or a folder of them")
    parser.add_argument("--json", action="store_true", help="one JSON object per clip")
    parser.add_argument("--robot", choices=["g1"], default="g1")
    parser.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    args = parser.parse_args(argv)
    try:
        rows = describe_clips(args.path, args.robot, args.trust_pickle)
    except MotionDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for row in rows:
        print(json.dumps(row) if args.json else format_row(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
