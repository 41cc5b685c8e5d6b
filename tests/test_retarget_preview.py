"""BVH retargeting round trip (G1 keypoints -> BVH -> G1) and the motion preview tool."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from data_process.bvh import Bvh, BvhJoint, forward_kinematics, read_bvh, write_bvh  # noqa: E402
from data_process.motion_gen.robot import (FOOT_SITES, HAND_SITES, default_joint_pos,  # noqa: E402
                                           joint_names, load_model, standing_geometry)
from gear_sonic.utils.motion_lib import MotionDataError, read_motion_file  # noqa: E402
from gear_sonic.utils.motion_lib.smpl_keypoints import (SMPL_JOINT_NAMES,  # noqa: E402
                                                        smpl_keypoints_from_bodies)

NUM_FRAMES, FPS = 30, 30.0
# LAFAN1-style skeleton: (BVH joint, parent, SMPL keypoint it sits on); None = End Site.
SKELETON = [
    ("Hips", None, "pelvis"),
    ("LeftUpLeg", "Hips", "L_hip"), ("LeftLeg", "LeftUpLeg", "L_knee"),
    ("LeftFoot", "LeftLeg", "L_ankle"), ("LeftToe", "LeftFoot", "L_foot"),
    ("RightUpLeg", "Hips", "R_hip"), ("RightLeg", "RightUpLeg", "R_knee"),
    ("RightFoot", "RightLeg", "R_ankle"), ("RightToe", "RightFoot", "R_foot"),
    ("Spine", "Hips", "spine1"), ("Spine1", "Spine", "spine2"), ("Spine2", "Spine1", "spine3"),
    ("Neck", "Spine2", "neck"), ("Head", "Neck", "head"),
    ("LeftShoulder", "Spine2", "L_collar"), ("LeftArm", "LeftShoulder", "L_shoulder"),
    ("LeftForeArm", "LeftArm", "L_elbow"), ("LeftHand", "LeftForeArm", "L_wrist"),
    ("LeftHand_End", "LeftHand", "L_hand"),
    ("RightShoulder", "Spine2", "R_collar"), ("RightArm", "RightShoulder", "R_shoulder"),
    ("RightForeArm", "RightArm", "R_elbow"), ("RightHand", "RightForeArm", "R_wrist"),
    ("RightHand_End", "RightHand", "R_hand"),
]
EE_SITES = (*FOOT_SITES, *HAND_SITES)


def g1_motion() -> np.ndarray:
    """(T, 36) qpos: a gentle squat with arm swings, soles resting on the floor."""
    model = load_model(with_floor=False)
    names = joint_names(model)
    q_default = default_joint_pos(model)
    phase = np.sin(np.linspace(0.0, np.pi, NUM_FRAMES))
    qpos = np.zeros((NUM_FRAMES, model.nq))
    qpos[:, 3] = 1.0
    qpos[:, 7:] = q_default
    for side in ("left", "right"):
        col = {n: 7 + names.index(f"{side}_{n}_joint") for n in
               ("hip_pitch", "knee", "ankle_pitch", "shoulder_pitch", "elbow")}
        qpos[:, col["hip_pitch"]] -= 0.35 * phase
        qpos[:, col["knee"]] += 0.7 * phase
        qpos[:, col["ankle_pitch"]] -= 0.35 * phase
        qpos[:, col["shoulder_pitch"]] -= 0.5 * phase
        qpos[:, col["elbow"]] -= 0.3 * phase
    # Root height that keeps the soles on the floor (level feet: site height = sole offset).
    data = mujoco.MjData(model)
    above = standing_geometry()["site_above_sole"]
    for t in range(NUM_FRAMES):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        lowest = min(data.site(s).xpos[2] for s in FOOT_SITES) - above
        qpos[t, 2] = -lowest
    return qpos


def fk(qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (T, 24, 3) and end-effector sites (T, 4, 3)."""
    model = load_model(with_floor=False)
    data = mujoco.MjData(model)
    names = [model.body(b).name for b in range(1, model.nbody)]
    kps, sites = [], []
    for q in qpos:
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        kps.append(smpl_keypoints_from_bodies(data.xpos[1:], data.xquat[1:], names))
        sites.append([data.site(s).xpos.copy() for s in EE_SITES])
    return np.array(kps), np.array(sites)


def skeleton_bvh(keypoints: np.ndarray) -> Bvh:
    """A BVH (cm, Y-up, ZXY channels) whose forward kinematics lands on the keypoints.

    Offsets come from frame 0; each frame, every joint gets the world rotation that best maps
    its rest child offsets onto the current child directions (Kabsch), measured from the
    joint's own FK position so errors do not accumulate down the chains.
    """
    kp = keypoints[..., [1, 2, 0]] * 100.0  # Z-up (x fwd) -> Y-up (z fwd), metres -> cm
    index = {name: i for i, (name, _, _) in enumerate(SKELETON)}
    smpl = [SMPL_JOINT_NAMES.index(s) for _, _, s in SKELETON]
    parents = [index[p] if p else -1 for _, p, _ in SKELETON]
    pos = kp[:, smpl]
    offsets = [pos[0, j] - pos[0, p] if p >= 0 else np.zeros(3) for j, p in enumerate(parents)]
    children = {j: [c for c, p in enumerate(parents) if p == j] for j in range(len(SKELETON))}
    world_r = np.zeros((NUM_FRAMES, len(SKELETON), 3, 3))
    fk_pos = np.zeros_like(pos)
    motion = []
    for t in range(NUM_FRAMES):
        row = []
        for j, parent in enumerate(parents):
            fk_pos[t, j] = (pos[t, j] if parent < 0 else
                            fk_pos[t, parent] + world_r[t, parent] @ offsets[j])
            if children[j]:
                rest = np.array([offsets[c] for c in children[j]])
                now = np.array([pos[t, c] - fk_pos[t, j] for c in children[j]])
                world_r[t, j] = Rotation.align_vectors(now, rest)[0].as_matrix()
            else:
                world_r[t, j] = world_r[t, parent]
            if SKELETON[j][0].endswith("_End"):
                continue
            local = world_r[t, j] if parent < 0 else world_r[t, parent].T @ world_r[t, j]
            euler = Rotation.from_matrix(local).as_euler("ZXY", degrees=True)
            row.extend([*pos[t, j], *euler] if parent < 0 else euler)
        motion.append(row)
    joints = [BvhJoint(name, parents[j], offsets[j],
                       [] if name.endswith("_End") else
                       (["Xposition", "Yposition", "Zposition"] if parents[j] < 0 else [])
                       + ["Zrotation", "Xrotation", "Yrotation"])
              for j, (name, _, _) in enumerate(SKELETON)]
    return Bvh(joints, 1.0 / FPS, np.array(motion))


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    from data_process.retarget_bvh import main as retarget_main

    qpos = g1_motion()
    keypoints, sites = fk(qpos)
    path = tmp_path_factory.mktemp("bvh") / "squat.bvh"
    write_bvh(path, skeleton_bvh(keypoints))
    out = path.with_suffix(".npz")
    assert retarget_main([str(path), str(out), "--fps", str(FPS)]) == 0
    return path, out, keypoints, sites


def test_bvh_fk_reproduces_keypoints(round_trip):
    path, _, keypoints, _ = round_trip
    bvh = read_bvh(path)
    pos, _ = forward_kinematics(bvh)
    smpl = {s: SMPL_JOINT_NAMES.index(s) for _, _, s in SKELETON}
    expected = keypoints[..., [1, 2, 0]] * 100.0
    for name, _, s in SKELETON:
        err = np.abs(pos[:, bvh.index(name)] - expected[:, smpl[s]]).max()
        # Hips' children ride on different G1 links, so one rotation fits them to ~1 cm.
        assert err < 2.0, f"{name}: BVH FK is {err:.2f} cm off its keypoint"


def test_retarget_end_effectors(round_trip):
    _, out, _, sites = round_trip
    (clip,) = read_motion_file(out)
    assert clip.num_frames == NUM_FRAMES and clip.smpl_joints.shape == (NUM_FRAMES, 24, 3)
    qpos = np.concatenate([clip.root_pos, clip.root_quat, clip.joint_pos], axis=1)
    _, got = fk(qpos)
    err = np.linalg.norm(got - sites, axis=-1)
    worst = err.max(axis=0)
    assert worst.max() < 0.03, dict(zip(EE_SITES, np.round(worst, 4)))


def test_truncated_bvh_names_file(round_trip, tmp_path):
    path = round_trip[0]
    lines = path.read_text().splitlines()
    bad = tmp_path / "broken.bvh"
    bad.write_text("\n".join(lines[:-5]) + "\n" + lines[-5][: len(lines[-5]) // 2])
    with pytest.raises(MotionDataError, match="broken.bvh") as info:
        read_bvh(bad)
    assert "MOTION" in str(info.value)


def test_preview_writes_video_and_sheet(round_trip, tmp_path):
    from data_process import preview_motions

    try:
        renderer = mujoco.Renderer(load_model(with_floor=True), 64, 64)
        renderer.close()
    except Exception as exc:  # no EGL/OSMesa in this environment
        pytest.skip(f"MuJoCo offscreen rendering unavailable: {exc}")
    _, out, _, _ = round_trip
    written = preview_motions.main([str(out), str(tmp_path), "--width", "160", "--height", "120"])
    videos = list(tmp_path.glob("*.mp4"))
    sheets = list(tmp_path.glob("*.png"))
    assert written == 0 and videos and sheets
    assert all(p.stat().st_size > 1000 for p in videos + sheets)


def test_mapping_yaml_overrides(tmp_path):
    from data_process.retarget_bvh import DEFAULT_MAPPING, load_mapping

    good = tmp_path / "map.yaml"
    good.write_text("joints:\n  Neck: null\n  LeftHand_End: {site: left_palm, weight: 5}\n"
                    "  LeftToe: {weight: 7}\nposture_weight: 0.2\n")
    mapping, posture = load_mapping(good)
    assert "Neck" not in mapping and posture == 0.2
    assert mapping["LeftHand_End"] == {"offset": [0.0, 0.0, 0.0], "weight": 5, "site": "left_palm"}
    assert mapping["LeftToe"]["body"] == DEFAULT_MAPPING["LeftToe"]["body"]
    assert mapping["LeftToe"]["weight"] == 7
    bad = tmp_path / "bad.yaml"
    bad.write_text("joints:\n  Tail: {weight: 3}\n")
    with pytest.raises(MotionDataError, match="bad.yaml"):
        load_mapping(bad)


def test_stance_feet_targets_are_locked_while_in_contact():
    from data_process.retarget_bvh import lock_stance_targets

    skate = np.stack([np.linspace(0.0, 0.1, 6), np.zeros(6), np.zeros(6)], axis=1)  # 10 cm of slide
    contacts = np.array([[1, 0], [1, 0], [1, 0], [0, 0], [1, 0], [1, 0]], dtype=bool)
    locked = lock_stance_targets({"LeftFoot": skate, "RightFoot": skate, "Hips": skate}, contacts)
    assert np.allclose(locked["LeftFoot"][:3], skate[0]) and np.allclose(locked["LeftFoot"][4:], skate[4])
    assert np.allclose(locked["LeftFoot"][3], skate[3])  # swing frame follows the human
    assert np.allclose(locked["RightFoot"], skate) and np.allclose(locked["Hips"], skate)  # no contact / not a foot
