"""Motion library: readers/writers, FK, resampling, filtering, queries and error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import joblib
import mujoco
import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # allow plain `pytest` without installing the package
    sys.path.insert(0, str(REPO_ROOT))

from gear_sonic.utils.motion_lib import (  # noqa: E402
    MotionDataError,
    MotionLib,
    RawClip,
    RobotKinematics,
    fk_max_error,
    read_motion_file,
    write_npz,
    write_sonic_pkl,
)
from gear_sonic.utils.np_quat import angular_velocity, wxyz_to_xyzw  # noqa: E402

INSPECT = REPO_ROOT / "data_process" / "inspect_motions.py"
FPS = 30.0
NUM_FRAMES = 60
YAW_RATE = 0.3  # rad/s of the root
TRACKED_BODIES = ["torso_link", "pelvis", "left_ankle_roll_link", "right_wrist_yaw_link"]
DEFAULT_POSE = {"hip_pitch": -0.312, "knee": 0.669, "ankle_pitch": -0.363, "elbow": 0.6}


# --- Fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    from mjlab.asset_zoo.robots.unitree_g1.g1_constants import G1_XML

    return mujoco.MjModel.from_xml_path(str(G1_XML))


@pytest.fixture(scope="module")
def kin(model) -> RobotKinematics:
    return RobotKinematics(model)


def make_clip(kin: RobotKinematics, key: str = "walk_01", num_frames: int = NUM_FRAMES,
              phase: float = 0.0) -> RawClip:
    """Smooth joint sinusoids around the G1 default pose, slowly walking/turning root."""
    t = np.arange(num_frames) / FPS
    base = np.array([next((v for k, v in DEFAULT_POSE.items() if k in n), 0.0)
                     for n in kin.joint_names])
    j = np.arange(kin.num_joints)
    joint_pos = base + 0.15 * np.sin(2 * np.pi * 0.8 * t[:, None] + 0.4 * j + phase)
    root_pos = np.stack([0.3 * t, 0.02 * np.sin(2 * t), 0.76 + 0.01 * np.sin(4 * t)], -1)
    yaw = YAW_RATE * t + phase
    root_quat = np.stack([np.cos(yaw / 2), 0 * t, 0 * t, np.sin(yaw / 2)], -1)
    body_pos, body_quat = kin.forward(root_pos, root_quat, joint_pos)
    smpl = root_pos[:, None, :] + 0.1 * np.sin(np.arange(72).reshape(1, 24, 3) + t[:, None, None])
    return RawClip(key=key, source="memory", fps=FPS, joint_names=[], joint_pos=joint_pos,
                   root_pos=root_pos, root_quat=root_quat, body_names=list(kin.body_names),
                   body_pos_w=body_pos, body_quat_w=body_quat, smpl_joints=smpl)


@pytest.fixture()
def clip(kin) -> RawClip:
    return make_clip(kin)


@pytest.fixture()
def pkl_file(tmp_path, clip) -> Path:
    path = tmp_path / "motions.pkl"
    write_sonic_pkl(path, [clip])
    return path


def load(path, model, **kw) -> MotionLib:
    return MotionLib(path, model, TRACKED_BODIES, **kw)


def assert_states_close(a, b, atol=1e-4, label=""):
    for field in ("joint_pos", "joint_vel", "body_pos_w", "body_quat_w", "body_lin_vel_w",
                  "body_ang_vel_w", "smpl_joints"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.shape == y.shape, (label, field)
        assert torch.allclose(x, y, atol=atol), (label, field, (x - y).abs().max())


def all_frames(lib: MotionLib, clip_id: int = 0):
    n = int(lib.clip_num_frames[clip_id])
    return lib.state_at_frames(torch.tensor([clip_id]), torch.arange(n)[None])


# --- Formats and round trips -------------------------------------------------------------------


def write_npz_layouts(folder: Path, clip: RawClip, kin: RobotKinematics, with_bodies: bool):
    """The same motion in the NPZ layouts the reader accepts; returns {layout: path}."""
    root7 = np.concatenate([clip.root_pos, clip.root_quat, clip.joint_pos], axis=1)
    names_30 = np.array(["floating_base_joint"] + kin.joint_names)  # leading free joint
    perm = np.random.default_rng(1).permutation(kin.num_joints)
    bodies = dict(body_pos_w=clip.body_pos_w, body_quat_w=clip.body_quat_w,
                  smpl_joints=clip.smpl_joints)  # mjlab style: root = pelvis body
    layouts = {
        "cols_7_plus_29": dict(joint_pos=root7, fps=np.array([FPS])),
        "cols_36_names_30": dict(joint_pos=root7, fps=FPS, joint_names=names_30),
        "shuffled_names_root_arrays": dict(
            joint_pos=clip.joint_pos[:, perm], joint_names=np.array(kin.joint_names)[perm],
            root_pos=clip.root_pos, root_quat=clip.root_quat, fps=FPS),
        "bodies_named": dict(joint_pos=clip.joint_pos, fps=FPS,
                             body_names=np.array(kin.body_names), **bodies),
        "bodies_unnamed_names_30": dict(joint_pos=clip.joint_pos, fps=FPS, joint_names=names_30,
                                        **bodies),
    }
    paths = {}
    for name, arrays in layouts.items():
        if ("body_pos_w" in arrays) == with_bodies:
            paths[name] = folder / f"{name}.npz"
            np.savez(paths[name], **arrays)
    return paths


def test_npz_layouts_match_pkl_after_resampling(tmp_path, model, kin, clip, pkl_file):
    reference = all_frames(load(pkl_file, model))
    for name, path in write_npz_layouts(tmp_path, clip, kin, with_bodies=False).items():
        state = all_frames(load(path, model))
        state.smpl_joints = reference.smpl_joints  # these layouts carry no SMPL joints
        assert_states_close(state, reference, label=name)


def test_body_npz_layouts_match_pkl_at_file_rate(tmp_path, model, kin, clip, pkl_file):
    # Stored bodies are resampled directly rather than re-derived by FK, so compare at the
    # file's own rate where no interpolation happens.
    reference = all_frames(load(pkl_file, model, target_fps=FPS))
    for name, path in write_npz_layouts(tmp_path, clip, kin, with_bodies=True).items():
        assert_states_close(all_frames(load(path, model, target_fps=FPS)), reference, label=name)


def test_root_columns_detected_without_names_or_hint(tmp_path, kin, clip):
    paths = write_npz_layouts(tmp_path, clip, kin, with_bodies=False)
    (read,) = read_motion_file(paths["cols_7_plus_29"])  # no num_joints hint
    assert read.joint_pos.shape == (NUM_FRAMES, kin.num_joints)
    np.testing.assert_allclose(read.root_pos, clip.root_pos)
    (named,) = read_motion_file(paths["cols_36_names_30"])
    assert named.joint_names == kin.joint_names


def test_near_unit_quaternions_are_renormalised(tmp_path, clip):
    write_sonic_pkl(tmp_path / "m.pkl", [replace(clip, root_quat=clip.root_quat * (1 + 5e-4))])
    (read,) = read_motion_file(tmp_path / "m.pkl")
    np.testing.assert_allclose(np.linalg.norm(read.root_quat, axis=-1), 1.0, atol=1e-12)


def test_body_pose_without_partner_is_an_error(tmp_path, clip):
    np.savez(tmp_path / "half.npz", joint_pos=clip.joint_pos, fps=FPS, body_pos_w=clip.body_pos_w)
    with pytest.raises(MotionDataError, match="body_quat_w"):
        read_motion_file(tmp_path / "half.npz")


def test_writer_reader_round_trip(tmp_path, kin, clip):
    write_npz(tmp_path / "a.npz", clip)
    write_sonic_pkl(tmp_path / "b.pkl", [replace(clip, key="b")])
    (npz_clip,) = read_motion_file(tmp_path / "a.npz")
    (pkl_clip,) = read_motion_file(tmp_path / "b.pkl")
    for got in (npz_clip, pkl_clip):
        np.testing.assert_allclose(got.joint_pos, clip.joint_pos)
        np.testing.assert_allclose(got.root_quat, clip.root_quat, atol=1e-12)
        np.testing.assert_allclose(got.smpl_joints, clip.smpl_joints)
    np.testing.assert_allclose(npz_clip.body_pos_w, clip.body_pos_w)
    on_disk = joblib.load(tmp_path / "b.pkl")["b"]
    np.testing.assert_allclose(on_disk["root_rot"], wxyz_to_xyzw(clip.root_quat))  # xyzw
    assert on_disk["pose_aa"].shape == (NUM_FRAMES, kin.num_joints + 1, 3)
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files


# --- Kinematics --------------------------------------------------------------------------------


def test_fk_matches_stored_bodies(tmp_path, model, kin, clip):
    write_npz(tmp_path / "walk.npz", clip)
    (read,) = read_motion_file(tmp_path / "walk.npz")
    assert fk_max_error(read, kin) < 1e-5
    pelvis = kin.body_names.index("pelvis")
    np.testing.assert_allclose(clip.body_pos_w[:, pelvis], clip.root_pos, atol=1e-9)
    lib = load(tmp_path / "walk.npz", model, target_fps=FPS)
    state = all_frames(lib)
    columns = [kin.body_names.index(n) for n in TRACKED_BODIES]
    stored = torch.from_numpy(clip.body_pos_w[:, columns]).float()
    assert (state.body_pos_w[0] - stored).norm(dim=-1).max() < 1e-5


def test_velocities_from_finite_differences(model, pkl_file):
    state = all_frames(load(pkl_file, model))
    pelvis = TRACKED_BODIES.index("pelvis")
    ang = state.body_ang_vel_w[0, :, pelvis]
    assert torch.allclose(ang[:, 2], torch.full_like(ang[:, 2], YAW_RATE), atol=1e-3)
    lin = state.body_lin_vel_w[0, 5:-5, pelvis]
    assert torch.allclose(lin[:, 0], torch.full_like(lin[:, 0], 0.3), atol=1e-3)


def test_angular_velocity_of_constant_rotation():
    times = np.linspace(0.0, 1.0, 11)
    angle = 2.0 * times
    quats = np.stack([np.cos(angle / 2), np.sin(angle / 2), 0 * angle, 0 * angle], -1)
    np.testing.assert_allclose(angular_velocity(quats, times), [[2.0, 0, 0]] * 11, atol=1e-9)


# --- Resampling and queries --------------------------------------------------------------------


def test_resampling_30_to_50_keeps_ends_and_interpolates(model, clip, pkl_file):
    lib = load(pkl_file, model)
    n = int(lib.clip_num_frames[0])
    assert n == int(np.ceil((NUM_FRAMES - 1) / FPS * 50 - 1e-6)) + 1
    assert lib.clip_duration_s[0] == pytest.approx((n - 1) / 50)
    state = all_frames(lib)
    src = torch.from_numpy(clip.joint_pos).float()
    assert torch.allclose(state.joint_pos[0, 0], src[0], atol=1e-6)
    assert torch.allclose(state.joint_pos[0, -1], src[-1], atol=1e-6)
    # Target frame 1 is at 0.02 s = source frame 0.6; target frame 5 is exactly source frame 3.
    assert torch.allclose(state.joint_pos[0, 1], 0.4 * src[0] + 0.6 * src[1], atol=1e-6)
    assert torch.allclose(state.joint_pos[0, 5], src[3], atol=1e-6)
    smpl = torch.from_numpy(clip.smpl_joints).float()
    assert torch.allclose(state.smpl_joints[0, 1], 0.4 * smpl[0] + 0.6 * smpl[1], atol=1e-6)


def test_state_at_times_interpolates_and_clamps(model, pkl_file):
    lib = load(pkl_file, model)
    frames = lib.state_at_frames(torch.tensor([0]), torch.tensor([[3, 4]]))
    mid = lib.state_at_times(torch.tensor([0]), torch.tensor([[3.5 * lib.dt]]))
    expected = 0.5 * (frames.joint_pos[0, 0] + frames.joint_pos[0, 1])
    assert torch.allclose(mid.joint_pos[0, 0], expected, atol=1e-5)
    assert torch.allclose(mid.body_quat_w.norm(dim=-1), torch.ones(1, 1, len(TRACKED_BODIES)))
    end = lib.state_at_times(torch.tensor([0]), torch.tensor([1e3]))
    last = lib.state_at_frames(torch.tensor([0]), torch.tensor([10**6]))
    assert_states_close(end, last, atol=1e-6)


def test_query_shapes(tmp_path, model, kin):
    write_sonic_pkl(tmp_path / "m.pkl", [make_clip(kin, f"c{i}", phase=i) for i in range(3)])
    lib = load(tmp_path / "m.pkl", model)
    clip_ids = torch.tensor([0, 1, 2, 1, 0])
    frames = torch.arange(4)[None].repeat(5, 1) * 7 - 3  # includes out-of-range -3
    state = lib.state_at_frames(clip_ids, frames)
    num_bodies, num_joints = len(TRACKED_BODIES), kin.num_joints
    expected = dict(joint_pos=(num_joints,), joint_vel=(num_joints,), body_pos_w=(num_bodies, 3),
                    body_quat_w=(num_bodies, 4), body_lin_vel_w=(num_bodies, 3),
                    body_ang_vel_w=(num_bodies, 3), smpl_joints=(24, 3))
    for field, tail in expected.items():
        assert getattr(state, field).shape == (5, 4) + tail, field
    assert state.joint_pos.dtype == torch.float32
    first = lib.state_at_frames(clip_ids, torch.zeros(5, dtype=torch.long))
    assert torch.equal(state.joint_pos[:, 0], first.joint_pos)  # frame -3 clamps to 0
    assert lib.state_at_times(clip_ids, torch.rand(5, 4)).body_pos_w.shape == (5, 4, num_bodies, 3)


def test_clips_without_smpl_give_zeros(tmp_path, model, kin, clip):
    write_sonic_pkl(tmp_path / "m.pkl", [clip, replace(clip, key="plain", smpl_joints=None)])
    lib = load(tmp_path / "m.pkl", model)
    assert lib.clip_has_smpl.tolist() == [True, False]
    state = lib.state_at_frames(torch.tensor([0, 1]), torch.tensor([3, 3]))
    assert state.smpl_joints[0].abs().sum() > 0 and state.smpl_joints[1].abs().sum() == 0


# --- Datasets: folders, filters, resident subsets ----------------------------------------------

KEYS = ["walk_01", "walk_02", "run_01", "tmp_run_02", "jump_01", "tmp_jump_02"]


@pytest.fixture()
def motion_folder(tmp_path, kin) -> Path:
    folder = tmp_path / "dataset"
    clips = [make_clip(kin, key, num_frames=20 + 5 * i, phase=i) for i, key in enumerate(KEYS)]
    write_sonic_pkl(folder / "a.pkl", clips[:2])
    write_sonic_pkl(folder / "b.pkl", clips[2:4])
    write_sonic_pkl(folder / "nested" / "c.pkl", clips[4:])
    return folder


def test_folder_of_pkls_loads(model, motion_folder):
    lib = load(motion_folder, model)
    assert lib.keys == KEYS and lib.num_total_clips == lib.num_clips == 6
    assert lib.clip_has_smpl.all()


def test_key_filters(model, motion_folder):
    assert load(motion_folder, model, key_regex="walk_.*").keys == ["walk_01", "walk_02"]
    assert load(motion_folder, model, remove_key_prefixes=["tmp_"]).keys == [
        "walk_01", "walk_02", "run_01", "jump_01"]
    subset = load(motion_folder, model, max_unique_motions=3, seed=7).keys
    assert len(subset) == 3 and set(subset) <= set(KEYS)
    assert load(motion_folder, model, max_unique_motions=3, seed=7).keys == subset
    with pytest.raises(MotionDataError, match="no clips left"):
        load(motion_folder, model, key_regex="walk")  # full match: 'walk' alone matches nothing


def test_resident_subset_sampling(model, motion_folder):
    lib = load(motion_folder, model, max_resident_clips=3)
    assert lib.num_total_clips == 6 and lib.num_clips == 3
    assert lib.resident_ids.shape == (3,)
    assert ((lib.resident_ids >= 0) & (lib.resident_ids < 6)).all()
    # Clip i has 20 + 5 i frames at 30 fps; at 50 Hz that is ceil(duration * 50) + 1 frames.
    expected = [int(np.ceil((20 + 5 * i - 1) / FPS * 50 - 1e-6)) + 1 for i in range(6)]
    assert lib.dataset_num_frames.tolist() == expected
    weights = torch.zeros(6)
    weights[4] = 1.0
    lib.sample_resident(weights)
    assert lib.resident_ids.tolist() == [4, 4, 4]
    lib.load_resident([1, 1, 5])
    assert lib.num_clips == 3 and lib.resident_ids.tolist() == [1, 1, 5]
    a = lib.state_at_frames(torch.tensor([0]), torch.tensor([4]))
    b = lib.state_at_frames(torch.tensor([1]), torch.tensor([4]))
    assert torch.equal(a.body_pos_w, b.body_pos_w)
    everything = load(motion_folder, model)
    before = everything.resident_ids.clone()
    everything.sample_resident()  # no-op when everything fits
    assert torch.equal(everything.resident_ids, before)


# --- Bad inputs --------------------------------------------------------------------------------


def write_bad_file(folder: Path, clip: RawClip, fmt: str, edit) -> Path:
    """Write `clip` as a SONIC PKL or a named-joint NPZ after `edit` broke its array dict.

    The NPZ stores `clip.joint_names`, so set them before calling.
    """
    if fmt == "pkl":
        entry = {"root_trans_offset": clip.root_pos, "root_rot": wxyz_to_xyzw(clip.root_quat),
                 "dof": clip.joint_pos, "fps": FPS}
    else:
        entry = {"joint_pos": clip.joint_pos, "root_pos": clip.root_pos, "fps": np.array([FPS]),
                 "root_quat": clip.root_quat, "joint_names": np.array(clip.joint_names)}
    entry = {k: np.array(v) for k, v in entry.items()}  # private copies to edit
    edit(entry)
    path = folder / f"{clip.key}.{fmt}"
    joblib.dump({clip.key: entry}, path) if fmt == "pkl" else np.savez(path, **entry)
    return path


def poke(field, index, value):
    return lambda entry: entry[field].__setitem__(index, value)


# case -> (format, edit, substrings the message must contain besides file name and clip key)
BAD_INPUTS = {
    "missing_key": ("pkl", lambda e: e.pop("dof"), ["dof"]),
    "missing_fps": ("pkl", lambda e: e.pop("fps"), ["fps"]),
    "wrong_joint_count": ("pkl", lambda e: e.update(dof=e["dof"][:, :28]), ["dof"]),
    "unknown_joint_name": ("npz", poke("joint_names", 4, "left_knee_jiont"),
                           ["joint_names", "left_knee_jiont"]),
    "nan": ("npz", poke("joint_pos", (5, 3), np.nan), ["joint_pos", "NaN"]),
    "inf": ("pkl", poke("root_trans_offset", (9, 0), np.inf), ["root_trans_offset", "inf"]),
    "fps_zero": ("npz", lambda e: e.update(fps=np.array([0.0])), ["fps"]),
    "fps_negative": ("pkl", lambda e: e.update(fps=np.array(-30.0)), ["fps"]),
    "one_frame": ("pkl", lambda e: e.update(
        {k: e[k][:1] for k in ("dof", "root_rot", "root_trans_offset")}), ["dof"]),
    "non_unit_quat": ("pkl", poke("root_rot", 7, [0.0, 0.0, 0.3, 1.1]), ["root_rot", "frame 7"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_clear_error(tmp_path, model, kin, case):
    fmt, edit, expected = BAD_INPUTS[case]
    clip = make_clip(kin, key=f"clip_{case}")
    if fmt == "npz":
        clip.joint_names = list(kin.joint_names)
    path = write_bad_file(tmp_path, clip, fmt, edit)
    with pytest.raises(MotionDataError) as info:
        load(path, model)
    message = str(info.value)
    for part in [path.name, f"'{clip.key}'", *expected]:
        assert part in message, (part, message)


# --- inspect_motions CLI -----------------------------------------------------------------------


def run_inspect(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(INSPECT), *map(str, args)], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=120)


def test_inspect_cli_reports_fk_error(tmp_path, kin, clip):
    write_npz(tmp_path / "good.npz", clip)
    shifted = replace(clip, body_pos_w=clip.body_pos_w + np.array([0.0, 0.0, 0.2]))
    write_npz(tmp_path / "shifted.npz", shifted)
    write_sonic_pkl(tmp_path / "plain.pkl", [replace(clip, key="plain")])
    result = run_inspect(tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["key"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {"good", "shifted", "plain"}
    for row in rows.values():
        assert set(row) == {"key", "frames", "fps", "duration_s", "has_smpl", "fk_max_err_m"}
        assert row["frames"] == NUM_FRAMES and row["fps"] == FPS and row["has_smpl"] is True
        assert row["duration_s"] == pytest.approx((NUM_FRAMES - 1) / FPS)
    assert rows["good"]["fk_max_err_m"] < 1e-4
    assert rows["shifted"]["fk_max_err_m"] == pytest.approx(0.2, abs=1e-4)
    assert rows["plain"]["fk_max_err_m"] is None
    human = run_inspect(tmp_path / "good.npz")
    assert human.returncode == 0 and "good: 60 frames" in human.stdout


def test_inspect_cli_bad_file_exits_nonzero(tmp_path, kin):
    clip = make_clip(kin, key="broken")
    path = write_bad_file(tmp_path, clip, "pkl", lambda e: e.pop("fps"))
    result = run_inspect(path, "--json")
    assert result.returncode == 2
    assert "broken.pkl" in result.stderr and "'broken'" in result.stderr and "fps" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
