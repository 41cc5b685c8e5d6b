"""Per-clip plausibility report for robot motion files (any format convert_motions reads).

Usage: python data_process/validate_motions.py PATH [--strict] [--json] [--robot g1]

Checks, on the clip's own frame rate after mapping joints to the robot by name:
  joint_limits      joints outside the MuJoCo model's jnt_range (tolerance 1e-3 rad)
  foot_skating      horizontal foot drift per stance phase, in cm (fails above 3 cm);
                    stance = sole within 2 cm of z = 0 and foot slower than 0.2 m/s
  ground_pen        deepest geom below the floor (MuJoCo contact distance to a z = 0
                    plane; fails above 1 cm)
  vel/acc spikes    largest joint speed / acceleration (finite differences) and root speed
  nan / unreadable  files that cannot be read (NaN, truncation, units) count as failed clips
Prints one line per clip and a summary line; --json prints one JSON document instead.
Exit status: 0, or 1 with --strict when any clip fails; 2 when PATH itself is unusable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from data_process.convert_motions import (  # noqa: E402
    input_files, read_clips, robot_kinematics, to_robot,
)
from data_process.motion_gen.checks import (  # noqa: E402
    check_model, kinematic_state, smoothness_metrics, stance_phases,
)
from data_process.motion_gen.robot import (  # noqa: E402
    FLOOR_NAME, FOOT_SITES, foot_geom_ids, hinge_ranges, qpos_from_parts, sole_points,
)
from gear_sonic.utils.motion_lib import MotionDataError, RawClip  # noqa: E402
from gear_sonic.utils.motion_lib.safe_pickle import TRUST_PICKLE_HELP  # noqa: E402

LIMITS = {
    "joint_limit_tol": 1e-3,  # rad beyond jnt_range before it counts
    "stance_height": 0.02,  # m, lowest sole point below this may be a stance foot
    "stance_speed": 0.2,  # m/s, ... and only if the foot moves slower than this
    "skate_per_stance": 0.03,  # m, drift within one stance phase
    "ground_penetration": 0.01,  # m, deepest point below the floor
    "max_joint_vel": 25.0,  # rad/s, well above G1 motor limits: only glitches trip it
    "max_joint_acc": 2000.0,  # rad/s^2
    "max_root_speed": 8.0,  # m/s
}


def measure(clip: RawClip) -> dict:
    """All metrics of one robot-ordered clip (see the module docstring)."""
    model = check_model()
    data = mujoco.MjData(model)
    floor = model.geom(FLOOR_NAME).id
    feet = foot_geom_ids(model)
    qpos = qpos_from_parts(clip.root_pos, clip.root_quat, clip.joint_pos)
    zero_vel = np.zeros(model.nv)
    sole_z = np.empty((clip.num_frames, 2))
    site_xy = np.empty((clip.num_frames, 2, 2))
    lowest = np.empty(clip.num_frames)
    for t, q in enumerate(qpos):
        kinematic_state(model, data, q, zero_vel, collide=True)
        for side, ids in enumerate(feet):
            sole_z[t, side] = sole_points(model, data, ids)[:, 2].min()
            site_xy[t, side] = data.site(FOOT_SITES[side]).xpos[:2]
        con = data.contact
        on_floor = (con.geom[:data.ncon] == floor).any(axis=1)
        # Contact distance is the signed gap to the plane: negative = inside the floor.
        lowest[t] = con.dist[:data.ncon][on_floor].min(initial=np.inf)

    dt = 1.0 / clip.fps
    foot_speed = np.linalg.norm(np.gradient(site_xy, dt, axis=0), axis=-1)
    stance = (sole_z < LIMITS["stance_height"]) & (foot_speed < LIMITS["stance_speed"])
    slides = []
    for side in range(2):
        for start, end in stance_phases(stance[:, side]):
            drift = np.linalg.norm(site_xy[start:end, side] - site_xy[start, side], axis=-1)
            slides.append(float(drift.max()))

    ranges = hinge_ranges(model)
    excess = np.maximum(ranges[:, 0] - clip.joint_pos, clip.joint_pos - ranges[:, 1]).max(axis=0)
    bad = np.flatnonzero(excess > LIMITS["joint_limit_tol"])
    smooth = smoothness_metrics(clip.joint_pos, dt)
    root_speed = np.linalg.norm(np.gradient(clip.root_pos, dt, axis=0), axis=-1)
    return {
        "joint_limit_violations": {clip.joint_names[j]: round(float(excess[j]), 4) for j in bad},
        "stances": len(slides),
        "skate_max_cm": 100.0 * max(slides, default=0.0),
        "skate_mean_cm": 100.0 * float(np.mean(slides)) if slides else 0.0,
        "ground_penetration_m": max(0.0, -float(lowest.min())),
        "max_joint_vel": smooth["max_joint_vel"],
        "max_joint_acc": smooth["max_joint_acc"],
        "max_root_speed": float(root_speed.max()),
    }


def failures(metrics: dict) -> list[str]:
    m, lim = metrics, LIMITS
    checks = {
        "joint_limits": bool(m["joint_limit_violations"]),
        "foot_skating": m["skate_max_cm"] > 100.0 * lim["skate_per_stance"],
        "ground_penetration": m["ground_penetration_m"] > lim["ground_penetration"],
        "joint_vel_spike": m["max_joint_vel"] > lim["max_joint_vel"],
        "joint_acc_spike": m["max_joint_acc"] > lim["max_joint_acc"],
        "root_speed_spike": m["max_root_speed"] > lim["max_root_speed"],
    }
    return [name for name, failed in checks.items() if failed]


def validate_path(path: str, robot: str, trust_pickle: bool = False) -> list[dict]:
    """One report row per clip; unreadable files become one failed row with the error."""
    kin = robot_kinematics(robot)
    rows = []
    for file in input_files(path):
        try:
            clips = [to_robot(c, kin, c.fps, with_bodies=False)
                     for c in read_clips(file, kin, trust_pickle)]
        except MotionDataError as exc:
            rows.append({"file": str(file), "key": exc.clip_key or file.stem, "ok": False,
                         "failures": ["unreadable"], "error": str(exc)})
            continue
        for clip in clips:
            metrics = measure(clip)
            failed = failures(metrics)
            rows.append({"file": str(file), "key": clip.key, "frames": clip.num_frames,
                         "fps": clip.fps, "ok": not failed, "failures": failed, **metrics})
    return rows


def format_row(row: dict) -> str:
    status = "OK  " if row["ok"] else "FAIL"
    if "error" in row:
        return f"{status} {row['key']}: {row['error']}"
    limits = row["joint_limit_violations"]
    worst = max(limits.values(), default=0.0)
    line = (f"{status} {row['key']:<24s} {row['frames']:5d} fr @ {row['fps']:g} fps"
            f" | limits {len(limits)} joints (max +{worst:.3f} rad)"
            f" | skate max {row['skate_max_cm']:.1f} cm mean {row['skate_mean_cm']:.1f} cm"
            f" over {row['stances']} stances"
            f" | ground pen {1000 * row['ground_penetration_m']:.1f} mm"
            f" | vel {row['max_joint_vel']:.1f} rad/s acc {row['max_joint_acc']:.0f} rad/s^2"
            f" root {row['max_root_speed']:.2f} m/s")
    if row["failures"]:
        line += "  <-- " + ", ".join(row["failures"])
        if limits:
            line += " (" + ", ".join(f"{k} +{v:.3f}" for k, v in limits.items()) + ")"
    return line


def summary(rows: list[dict]) -> dict:
    failed = [r["key"] for r in rows if not r["ok"]]
    return {"clips": len(rows), "passed": len(rows) - len(failed), "failed": len(failed),
            "failed_keys": failed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="motion file (.pkl/.npz/.csv) or a folder of them")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any clip fails")
    parser.add_argument("--json", action="store_true", help="print {clips: [...], summary}")
    parser.add_argument("--robot", choices=["g1"], default="g1")
    parser.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    args = parser.parse_args(argv)
    try:
        rows = validate_path(args.path, args.robot, args.trust_pickle)
    except MotionDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = summary(rows)
    if args.json:
        print(json.dumps({"clips": rows, "summary": total}, indent=1))
    else:
        for row in rows:
            print(format_row(row))
        print(f"summary: {total['clips']} clips, {total['passed']} passed, "
              f"{total['failed']} failed" + (f" ({', '.join(total['failed_keys'])})"
                                             if total["failed"] else ""))
    return 1 if args.strict and total["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
