"""Retarget a human BVH clip (LAFAN1-style skeleton) to the Unitree G1 with keypoint IK (mink).

    python data_process/retarget_bvh.py IN.bvh OUT.npz [--fps 50] [--units cm|m] [--mapping m.yaml]

Pipeline: BVH forward kinematics -> metres -> Y-up to Z-up ((x, y, z) -> (z, x, y), so a
character facing +Z faces +X like the G1) -> scale by G1 leg length / human leg length
(hip-to-ankle) -> stance feet locked in place -> per-frame IK from the previous solution -> feet
put back on the ground ->
NPZ via write_npz, with the 24 human keypoints stored as `smpl_joints`.

Mapping: DEFAULT_MAPPING sends each BVH joint to a point on a G1 body (body name + offset in
that body's frame, the same points as the SMPL keypoint table of the motion library) or to an
existing G1 site (`site: left_palm`), with a position weight. Only Hips carries an orientation
target (`orientation_weight`), built from the hip and spine keypoints, since BVH rest poses
differ between exporters. Ankles/toes/wrists are primary targets, knees/elbows/shoulders
secondary; a posture task and mink.ConfigurationLimit keep the rest sensible. End Sites are
named `<parent>_End`. A YAML file given by --mapping may override entries or drop them (null):

    joints:
      LeftToe: {body: left_ankle_roll_link, offset: [0.12, 0, -0.03], weight: 50}
      LeftHand_End: {site: left_palm, weight: 30}
      Head: null
    posture_weight: 0.05
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import mink
import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_process.bvh import Bvh, forward_kinematics, read_bvh  # noqa: E402
from data_process.motion_gen.export import clip_arrays  # noqa: E402
from data_process.motion_gen.ik import IK_RANGE_FRACTION  # noqa: E402
from data_process.motion_gen.robot import (  # noqa: E402
    DT, FOOT_SITES, FPS, build_spec, default_joint_pos, hinge_ranges, shrunk_ranges,
    standing_geometry)
from gear_sonic.utils.motion_lib import MotionDataError, RawClip, write_npz  # noqa: E402
from gear_sonic.utils.motion_lib.smpl_keypoints import (  # noqa: E402
    G1_TO_SMPL, SMPL_JOINT_NAMES, smpl_keypoints_from_bodies)


def _kp(smpl_name: str, weight: float) -> dict:
    body, offset = G1_TO_SMPL[smpl_name]
    return {"body": body, "offset": list(offset), "weight": weight}


# BVH joint -> G1 target point and position weight. Ends (ankles, toes, wrists, hands)
# dominate; knees, elbows and the trunk only shape the rest of the pose.
DEFAULT_MAPPING: dict[str, dict] = {
    "Hips": {**_kp("pelvis", 100.0), "orientation_weight": 10.0},
    "LeftUpLeg": _kp("L_hip", 10.0), "RightUpLeg": _kp("R_hip", 10.0),
    "LeftLeg": _kp("L_knee", 20.0), "RightLeg": _kp("R_knee", 20.0),
    "LeftFoot": _kp("L_ankle", 200.0), "RightFoot": _kp("R_ankle", 200.0),
    "LeftToe": _kp("L_foot", 100.0), "RightToe": _kp("R_foot", 100.0),
    "Spine1": _kp("spine2", 10.0), "Neck": _kp("neck", 10.0),
    "LeftArm": _kp("L_shoulder", 10.0), "RightArm": _kp("R_shoulder", 10.0),
    "LeftForeArm": _kp("L_elbow", 20.0), "RightForeArm": _kp("R_elbow", 20.0),
    "LeftHand": _kp("L_wrist", 100.0), "RightHand": _kp("R_wrist", 100.0),
    "LeftHand_End": _kp("L_hand", 30.0), "RightHand_End": _kp("R_hand", 30.0),
}
POSTURE_WEIGHT = 0.05

# SMPL keypoint -> BVH joints to take it from (first one present wins).
SMPL_FROM_BVH: dict[str, tuple[str, ...]] = {
    "pelvis": ("Hips",), "L_hip": ("LeftUpLeg",), "R_hip": ("RightUpLeg",),
    "spine1": ("Spine",), "L_knee": ("LeftLeg",), "R_knee": ("RightLeg",),
    "spine2": ("Spine1", "Spine"), "L_ankle": ("LeftFoot",), "R_ankle": ("RightFoot",),
    "spine3": ("Spine2", "Spine1"), "L_foot": ("LeftToe", "LeftToeBase", "LeftFoot"),
    "R_foot": ("RightToe", "RightToeBase", "RightFoot"), "neck": ("Neck",),
    "L_collar": ("LeftShoulder",), "R_collar": ("RightShoulder",), "head": ("Head",),
    "L_shoulder": ("LeftArm",), "R_shoulder": ("RightArm",),
    "L_elbow": ("LeftForeArm",), "R_elbow": ("RightForeArm",),
    "L_wrist": ("LeftHand",), "R_wrist": ("RightHand",),
    "L_hand": ("LeftHand_End", "LeftHand"), "R_hand": ("RightHand_End", "RightHand"),
}
# Joints the pipeline itself needs (scale, root frame, contacts).
REQUIRED = ("Hips", "LeftUpLeg", "RightUpLeg", "LeftLeg", "RightLeg", "LeftFoot", "RightFoot",
            "Spine")
UNITS = {"cm": 0.01, "m": 1.0}
CONTACT_HEIGHT = 0.05  # m above the lowest ankle height of the clip
CONTACT_SPEED = 0.5  # m/s
FIRST_FRAME_ITERS, FRAME_ITERS = 60, 12


def load_mapping(path: str | Path | None) -> tuple[dict[str, dict], float]:
    mapping = {k: dict(v) for k, v in DEFAULT_MAPPING.items()}
    posture = POSTURE_WEIGHT
    if path is None:
        return mapping, posture
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    for name, entry in (data.get("joints") or {}).items():
        if entry is None:
            mapping.pop(name, None)
            continue
        if not isinstance(entry, dict) or not (
                name in mapping or "body" in entry or "site" in entry):
            raise MotionDataError(f"entry for '{name}' needs 'body' (+ 'offset') or 'site'",
                                  source=str(path), field=f"joints.{name}",
                                  fix="see DEFAULT_MAPPING in data_process/retarget_bvh.py")
        base = {} if "site" in entry else mapping.get(name, {})
        mapping[name] = {"offset": [0.0, 0.0, 0.0], "weight": 10.0, **base, **entry}
        if "site" in entry:
            mapping[name].pop("body", None)
    return mapping, float(data.get("posture_weight", posture))


def human_positions(bvh: Bvh, units: str) -> np.ndarray:
    """(T, J, 3) joint positions in metres, Z-up, facing +X when the BVH faces +Z."""
    pos, _ = forward_kinematics(bvh)
    pos = pos * UNITS[units]
    return pos[..., [2, 0, 1]]


def g1_leg_length(model: mujoco.MjModel) -> float:
    """Hip-to-ankle length (hip-knee + knee-ankle) of the G1 keypoints in the zero pose."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    names = [model.body(b).name for b in range(1, model.nbody)]
    kp = smpl_keypoints_from_bodies(data.xpos[1:], data.xquat[1:], names)
    i = {n: k for k, n in enumerate(SMPL_JOINT_NAMES)}
    return float(np.linalg.norm(kp[i["L_hip"]] - kp[i["L_knee"]])
                 + np.linalg.norm(kp[i["L_knee"]] - kp[i["L_ankle"]]))


def human_leg_length(pos: np.ndarray, names: list[str]) -> float:
    j = {n: names.index(n) for n in ("LeftUpLeg", "LeftLeg", "LeftFoot")}
    thigh = np.linalg.norm(pos[:, j["LeftUpLeg"]] - pos[:, j["LeftLeg"]], axis=-1)
    shin = np.linalg.norm(pos[:, j["LeftLeg"]] - pos[:, j["LeftFoot"]], axis=-1)
    return float(np.median(thigh + shin))


def root_rotations(pos: np.ndarray, names: list[str]) -> np.ndarray:
    """(T, 3, 3) pelvis frames: y from right to left hip, z towards the spine, x forward."""
    left, right = pos[:, names.index("LeftUpLeg")], pos[:, names.index("RightUpLeg")]
    up = pos[:, names.index("Spine")] - pos[:, names.index("Hips")]
    y = left - right
    y /= np.linalg.norm(y, axis=-1, keepdims=True)
    z = up - np.sum(up * y, axis=-1, keepdims=True) * y
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    return np.stack([np.cross(y, z), y, z], axis=-1)


def foot_contacts(pos: np.ndarray, names: list[str], fps: float) -> np.ndarray:
    """(T, 2) True where a human ankle is low and slow."""
    feet = pos[:, [names.index("LeftFoot"), names.index("RightFoot")]]
    low = feet[..., 2] < feet[..., 2].min() + CONTACT_HEIGHT
    speed = np.linalg.norm(np.gradient(feet, 1.0 / fps, axis=0), axis=-1)
    return low & (speed < CONTACT_SPEED)


def lock_stance_targets(targets: dict[str, np.ndarray], contacts: np.ndarray) -> dict[str, np.ndarray]:
    """Hold each foot's targets where its stance began, so the retargeted stance foot cannot slide
    even where the human foot does (mocap foot skate)."""
    locked = {name: value.copy() for name, value in targets.items()}
    for side, column in (("Left", 0), ("Right", 1)):
        foot_targets = [n for n in locked if n.startswith((f"{side}Foot", f"{side}Toe"))]
        contact = contacts[:, column]
        t = 0
        while t < len(contact):
            if not contact[t]:
                t += 1
                continue
            start = t
            while t < len(contact) and contact[t]:
                t += 1
            for name in foot_targets:
                locked[name][start:t] = locked[name][start]
    return locked


def ik_model(mapping: dict[str, dict]) -> mujoco.MjModel:
    """G1 (no floor) with one site per mapped target point, ranges shrunk like the generator."""
    spec = build_spec(with_floor=False)
    for name, entry in mapping.items():
        if "site" in entry:  # an existing site is targeted directly
            continue
        body = spec.body(entry["body"])
        if body is None:
            raise MotionDataError(f"mapping of '{name}' names unknown G1 body '{entry['body']}'",
                                  field="mapping", fix="use a body of the G1 model")
        body.add_site(name=f"rt_{name}", pos=list(entry["offset"]))
    model = spec.compile()
    hinges = [j for j in range(model.njnt) if model.jnt_type[j] != 0]
    model.jnt_range[hinges] = shrunk_ranges(hinge_ranges(model), IK_RANGE_FRACTION)
    return model


def solve_ik(model: mujoco.MjModel, mapping: dict[str, dict], posture_weight: float,
             targets: dict[str, np.ndarray], root_rot: np.ndarray) -> np.ndarray:
    """(T, 36) qpos following the targets frame by frame (warm-started from the last frame)."""
    q0 = np.zeros(model.nq)
    q0[7:] = default_joint_pos(model)
    q0[:3] = targets["Hips"][0]
    q0[3:7] = Rotation.from_matrix(root_rot[0]).as_quat(scalar_first=True)
    config = mink.Configuration(model, q0)
    tasks = {name: mink.FrameTask(e.get("site", f"rt_{name}"), "site", float(e["weight"]),
                                  float(e.get("orientation_weight", 0.0)) if name == "Hips"
                                  else 0.0)
             for name, e in mapping.items() if name in targets}
    posture = mink.PostureTask(model, cost=posture_weight)
    posture.set_target(q0)
    limits = [mink.ConfigurationLimit(model, gain=0.5)]
    out = []
    for t in range(len(root_rot)):
        for name, task in tasks.items():
            rot = mink.SO3.from_matrix(root_rot[t]) if name == "Hips" else mink.SO3.identity()
            task.set_target(mink.SE3.from_rotation_and_translation(rot, targets[name][t]))
        for _ in range(FIRST_FRAME_ITERS if t == 0 else FRAME_ITERS):
            vel = mink.solve_ik(config, [*tasks.values(), posture], DT, solver="daqp",
                                damping=1e-3, limits=limits)
            config.integrate_inplace(vel, DT)
        out.append(config.q.copy())
    return np.array(out)


def ground_feet(model: mujoco.MjModel, qpos: np.ndarray,
                contacts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shift the root so the lowest sole is at z = 0 on contact frames.

    Frames without contact (flight) take the shift interpolated from the nearest contact
    frames, so jumps keep their height relative to the ground.
    """
    data = mujoco.MjData(model)
    above = standing_geometry()["site_above_sole"]
    sites = [model.site(s).id for s in FOOT_SITES]
    lowest = np.empty(len(qpos))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        lowest[t] = data.site_xpos[sites, 2].min() - above
    contact = contacts.any(axis=1)
    frames = np.arange(len(qpos))
    if not contact.any():  # all-flight clip: only make sure nothing goes below the floor
        shift = np.full(len(qpos), -min(lowest.min(), 0.0))
    else:
        shift = np.interp(frames, frames[contact], -lowest[contact])
    qpos = qpos.copy()
    qpos[:, 2] += shift
    return qpos, shift


def retarget(bvh: Bvh, fps: float = 50.0, units: str = "cm",
             mapping_path: str | Path | None = None) -> tuple[RawClip, np.ndarray]:
    """The retargeted clip (resampled to `fps`) and its qpos (T, 36)."""
    names = bvh.names
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise MotionDataError(f"skeleton lacks joints {missing}", source=bvh.source,
                              fix="rename the joints to LAFAN1 names or pass --mapping")
    if units not in UNITS:
        raise ValueError(f"units must be one of {sorted(UNITS)}, got {units!r}")
    mapping, posture_weight = load_mapping(mapping_path)
    pos = _resample(human_positions(bvh, units), bvh.fps, fps)
    model = ik_model(mapping)
    pos *= g1_leg_length(model) / human_leg_length(pos, names)
    # Rest the clip's lowest ankle at the G1 standing ankle height.
    ankles = pos[:, [names.index("LeftFoot"), names.index("RightFoot")], 2]
    pos[..., 2] += _g1_standing_ankle_z() - ankles.min()
    contacts = foot_contacts(pos, names, fps)
    targets = lock_stance_targets({n: pos[:, names.index(n)] for n in mapping if n in names}, contacts)
    qpos = solve_ik(model, mapping, posture_weight, targets, root_rotations(pos, names))
    qpos, shift = ground_feet(model, qpos, contacts)
    arrays = clip_arrays(qpos, contacts)
    # clip_arrays differentiates at the generator's FPS; rescale the rates to ours.
    for name in ("joint_vel", "body_lin_vel_w", "body_ang_vel_w"):
        arrays[name] = arrays[name] * (fps / FPS)
    # Human keypoints, moved by the same per-frame ground shift as the robot root.
    smpl = np.stack([pos[:, names.index(_first_present(SMPL_FROM_BVH[j], names, bvh.source))]
                     for j in SMPL_JOINT_NAMES], axis=1)
    smpl[..., 2] += shift[:, None]
    clip = RawClip(
        key=Path(bvh.source).stem, source=bvh.source, fps=float(fps),
        joint_names=[str(n) for n in arrays["joint_names"]],
        joint_pos=arrays["joint_pos"], root_pos=arrays["root_pos"],
        root_quat=arrays["root_quat"], joint_vel=arrays["joint_vel"],
        body_names=[str(n) for n in arrays["body_names"]], body_pos_w=arrays["body_pos_w"],
        body_quat_w=arrays["body_quat_w"], body_lin_vel_w=arrays["body_lin_vel_w"],
        body_ang_vel_w=arrays["body_ang_vel_w"], smpl_joints=smpl.astype(np.float32))
    return clip, qpos


def _first_present(candidates: tuple[str, ...], names: list[str], source: str) -> str:
    for name in candidates:
        if name in names:
            return name
    raise MotionDataError(f"skeleton has none of {list(candidates)} for the SMPL keypoints",
                          source=source, fix="rename the joints to LAFAN1 names")


def _g1_standing_ankle_z() -> float:
    """Ankle keypoint height of the G1 default pose with the soles on the floor."""
    from data_process.motion_gen.robot import load_model

    model = load_model(with_floor=False)
    data = mujoco.MjData(model)
    data.qpos[2] = standing_geometry()["pelvis_z"]
    data.qpos[3] = 1.0
    data.qpos[7:] = default_joint_pos(model)
    mujoco.mj_kinematics(model, data)
    return float(data.xpos[model.body("left_ankle_roll_link").id, 2])


def _resample(pos: np.ndarray, src_fps: float, fps: float) -> np.ndarray:
    """Linear resampling of joint positions along time."""
    # Frame times are stored with few digits, so "equal" fps is judged loosely.
    if abs(src_fps - fps) < 1e-4 * fps:
        return pos.copy()
    src_t = np.arange(len(pos)) / src_fps
    new_t = np.arange(int(np.floor(src_t[-1] * fps + 1e-6)) + 1) / fps
    flat = pos.reshape(len(pos), -1)
    out = np.stack([np.interp(new_t, src_t, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape((len(new_t),) + pos.shape[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bvh")
    parser.add_argument("out")
    parser.add_argument("--fps", type=float, default=50.0)
    parser.add_argument("--units", choices=sorted(UNITS), default="cm")
    parser.add_argument("--mapping", default=None, help="YAML overriding DEFAULT_MAPPING")
    args = parser.parse_args(argv)
    try:
        clip, _ = retarget(read_bvh(args.bvh), args.fps, args.units, args.mapping)
    except MotionDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_npz(args.out, clip)
    print(f"wrote {args.out}: {clip.num_frames} frames at {clip.fps:g} fps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
