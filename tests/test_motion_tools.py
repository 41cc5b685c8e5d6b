"""Motion-data CLIs: convert_motions, validate_motions, split_motions (CPU, fixtures in code)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from data_process import convert_motions, split_motions, validate_motions
from data_process.motion_gen.robot import hinge_ranges, load_model
from gear_sonic.utils.motion_lib import RawClip, write_sonic_pkl
from gear_sonic.utils.np_quat import quat_conjugate, quat_log, quat_mul

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MOTIONS = REPO_ROOT / "data" / "motions"
FORMATS = convert_motions.FORMATS
SUFFIX = convert_motions.SUFFIX_OF
FPS = 30.0
NUM_FRAMES = 40


@pytest.fixture(scope="module")
def kin():
    return convert_motions.robot_kinematics("g1")


def smooth_motion(times: np.ndarray) -> dict[str, np.ndarray]:
    """Analytic G1 motion: every joint oscillates inside its range, the root walks and turns."""
    ranges = hinge_ranges(load_model(with_floor=False))
    centre, half = ranges.mean(axis=1), 0.5 * (ranges[:, 1] - ranges[:, 0])
    phase = np.linspace(0.0, np.pi, len(centre))
    joint_pos = centre + 0.15 * half * np.sin(2 * np.pi * 0.8 * times[:, None] + phase)
    yaw, roll = 0.5 * times, 0.05 * np.sin(2 * np.pi * times)
    # Yaw then a small roll, composed as wxyz quaternions.
    q_yaw = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=1)
    q_roll = np.stack([np.cos(roll / 2), np.sin(roll / 2), 0 * roll, 0 * roll], axis=1)
    root_pos = np.stack([0.3 * times, 0.1 * np.sin(times), 0.78 + 0.01 * np.sin(4 * times)], 1)
    return {"joint_pos": joint_pos, "root_pos": root_pos, "root_quat": quat_mul(q_yaw, q_roll)}


def make_clip(kin, key: str = "walk_fixture", fps: float = FPS,
              num_frames: int = NUM_FRAMES) -> RawClip:
    arrays = smooth_motion(np.arange(num_frames) / fps)
    return RawClip(key=key, source="fixture", fps=fps, joint_names=list(kin.joint_names),
                   **arrays)


def write_as(path: Path, clip: RawClip, fmt: str) -> Path:
    path = path.with_suffix(SUFFIX[fmt])
    convert_motions.write_clip(path, clip, fmt)
    return path


def read_robot(path: Path, kin) -> RawClip:
    """The single clip of a file, in robot joint order, at its own rate."""
    (clip,) = convert_motions.read_clips(path, kin)
    return convert_motions.to_robot(clip, kin, clip.fps, with_bodies=False)


def assert_close(clip: RawClip, ref: RawClip, tol: float = 1e-3) -> None:
    assert clip.num_frames == ref.num_frames
    np.testing.assert_allclose(clip.joint_pos, ref.joint_pos, atol=tol)
    np.testing.assert_allclose(clip.root_pos, ref.root_pos, atol=tol)
    delta = quat_mul(clip.root_quat, quat_conjugate(ref.root_quat))
    assert np.linalg.norm(quat_log(delta), axis=-1).max() < tol


def convert(inp: Path, out: Path, **kw) -> list[str]:
    kw.setdefault("fps", None)
    return convert_motions.convert(str(inp), str(out), robot="g1", to=kw.pop("to", None),
                                   jobs=1, show_progress=False, **kw)


# ---------------------------------------------------------------------------------------------
# Conversion


@pytest.mark.parametrize("src,dst", list(itertools.permutations(FORMATS, 2)))
def test_round_trip_between_formats(tmp_path, kin, src, dst):
    ref = make_clip(kin)
    original = write_as(tmp_path / "in" / ref.key, ref, src)
    middle = tmp_path / "mid" / f"{ref.key}{SUFFIX[dst]}"
    back = tmp_path / "back" / f"{ref.key}{SUFFIX[src]}"
    convert(original, middle, to=dst, fps=FPS if dst != "lafan_csv" else None)
    assert_close(read_robot(middle, kin), ref)
    convert(middle, back, to=src, fps=FPS if src != "lafan_csv" else None)
    assert_close(read_robot(back, kin), ref)


def test_resample_and_npz_bodies(tmp_path, kin):
    ref = make_clip(kin)
    src = write_as(tmp_path / "clip", ref, "csv")
    out = tmp_path / "clip50.npz"
    convert(src, out, fps=50.0)
    with np.load(out) as npz:
        assert float(npz["fps"][0]) == 50.0
        assert npz["body_pos_w"].shape == (npz["joint_pos"].shape[0], kin.num_bodies, 3)
        assert npz["joint_vel"].shape == npz["joint_pos"].shape
        times = np.arange(npz["joint_pos"].shape[0]) / 50.0
        expected = smooth_motion(times)
        # lerp of a sine sampled at 30 fps: error <= h^2/8 * max|q''| (~3e-3 here).
        np.testing.assert_allclose(npz["joint_pos"], expected["joint_pos"], atol=5e-3)
        np.testing.assert_allclose(npz["root_pos"], expected["root_pos"], atol=1e-3)
    # 30 -> 60 -> 30 keeps every original sample exactly.
    convert(src, tmp_path / "c60.csv", fps=60.0)
    convert(tmp_path / "c60.csv", tmp_path / "c30.csv", fps=30.0)
    assert_close(read_robot(tmp_path / "c30.csv", kin), ref, tol=1e-6)


def test_shuffled_joint_order_maps_by_name(tmp_path, kin):
    ref = make_clip(kin)
    perm = np.random.default_rng(0).permutation(kin.num_joints)
    shuffled = RawClip(key=ref.key, source="fixture", fps=FPS,
                       joint_names=[kin.joint_names[i] for i in perm],
                       joint_pos=ref.joint_pos[:, perm], root_pos=ref.root_pos,
                       root_quat=ref.root_quat)
    npz = write_as(tmp_path / "npz" / ref.key, shuffled, "npz")
    csv = write_as(tmp_path / "csv" / ref.key, shuffled, "csv")
    for src in (npz, csv):
        out = tmp_path / f"from_{src.suffix[1:]}.pkl"
        convert(src, out, fps=FPS)
        # SONIC PKL has no names: its columns must come out in robot XML order.
        (entry,) = joblib.load(out).values()
        np.testing.assert_allclose(entry["dof"], ref.joint_pos, atol=1e-6)


def test_folder_to_multi_clip_pkl_and_back(tmp_path, kin):
    for i in range(3):
        write_as(tmp_path / "in" / f"clip{i}", make_clip(kin, key=f"clip{i}"), FORMATS[i])
    # Through the script with 2 workers: exercises joblib (loky) and the progress bar path.
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "data_process" / "convert_motions.py"),
         str(tmp_path / "in"), str(tmp_path / "all.pkl"), "--fps", "30", "--jobs", "2"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(joblib.load(tmp_path / "all.pkl")) == ["clip0", "clip1", "clip2"]
    written = convert(tmp_path / "all.pkl", tmp_path / "out", to="npz", fps=FPS)
    assert sorted(Path(p).name for p in written) == ["clip0.npz", "clip1.npz", "clip2.npz"]


def test_on_disk_layouts_and_quaternion_conventions(tmp_path, kin):
    ref = make_clip(kin)
    src = write_as(tmp_path / "clip", ref, "npz")
    convert(src, tmp_path / "lafan.csv", to="lafan_csv")
    convert(src, tmp_path / "ours.csv", fps=FPS)
    convert(src, tmp_path / "sonic.pkl", fps=FPS)
    xyzw = ref.root_quat[:, [1, 2, 3, 0]]
    lafan = np.loadtxt(tmp_path / "lafan.csv", delimiter=",")
    assert lafan.shape == (NUM_FRAMES, 7 + kin.num_joints)
    np.testing.assert_allclose(lafan[:, 3:7], xyzw, atol=1e-6)
    np.testing.assert_allclose(lafan[:, 7:], ref.joint_pos, atol=1e-6)
    header = (tmp_path / "ours.csv").read_text().splitlines()[0].split(",")
    assert header[:8] == ["time", "root_x", "root_y", "root_z", "root_qw", "root_qx", "root_qy",
                          "root_qz"] and header[8:] == list(kin.joint_names)
    ours = np.loadtxt(tmp_path / "ours.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(ours[:, 0], np.arange(NUM_FRAMES) / FPS, atol=1e-9)
    np.testing.assert_allclose(ours[:, 4:8], ref.root_quat, atol=1e-6)
    (entry,) = joblib.load(tmp_path / "sonic.pkl").values()
    np.testing.assert_allclose(entry["root_rot"], xyzw, atol=1e-6)


def test_npz_variants_without_names(tmp_path, kin):
    ref = make_clip(kin)
    # mjlab style: 7 root columns (xyz + wxyz) before the 29 joints, no names at all.
    np.savez(tmp_path / "rootcols.npz", fps=np.array([FPS]),
             joint_pos=np.hstack([ref.root_pos, ref.root_quat, ref.joint_pos]))
    # BeyondMimic style: 29 unnamed joints, the root only as body 0 (pelvis) of the body arrays.
    body_pos, body_quat = kin.forward(ref.root_pos, ref.root_quat, ref.joint_pos)
    np.savez(tmp_path / "bodies.npz", fps=np.array([FPS]), joint_pos=ref.joint_pos,
             body_pos_w=body_pos, body_quat_w=body_quat)
    for name in ("rootcols", "bodies"):
        convert(tmp_path / f"{name}.npz", tmp_path / f"{name}.csv", fps=FPS)
        assert_close(read_robot(tmp_path / f"{name}.csv", kin), ref, tol=1e-6)


# ---------------------------------------------------------------------------------------------
# Validation


def test_validator_passes_committed_clips():
    rows = validate_motions.validate_path(str(SAMPLE_MOTIONS), "g1")
    assert len(rows) >= 10
    assert [r["key"] for r in rows if not r["ok"]] == []


def test_validator_flags_limit_and_floor(tmp_path, kin):
    with np.load(SAMPLE_MOTIONS / "stand_idle.npz") as npz:
        base = {k: npz[k] for k in ("fps", "joint_names", "joint_pos", "root_pos", "root_quat")}
    names = [str(n) for n in base["joint_names"]]
    knee = names.index("left_knee_joint")
    ranges = hinge_ranges(load_model(with_floor=False))
    over = dict(base, joint_pos=base["joint_pos"].copy())
    over["joint_pos"][:, knee] = ranges[kin.joint_names.index("left_knee_joint"), 1] + 0.1
    sunk = dict(base, root_pos=base["root_pos"] - np.array([0.0, 0.0, 0.05]))
    (tmp_path / "bad").mkdir()
    np.savez(tmp_path / "bad" / "over_limit.npz", **over)
    np.savez(tmp_path / "bad" / "sunk.npz", **sunk)
    nan = dict(base, root_pos=base["root_pos"].copy())
    nan["root_pos"][5, 2] = np.nan
    np.savez(tmp_path / "bad" / "with_nan.npz", **nan)
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "data_process" / "validate_motions.py"),
         str(tmp_path / "bad"), "--strict", "--json"], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    rows = {r["key"]: r for r in report["clips"]}
    assert "joint_limits" in rows["over_limit"]["failures"]
    assert "left_knee_joint" in rows["over_limit"]["joint_limit_violations"]
    assert rows["sunk"]["failures"] == ["ground_penetration"]
    assert rows["sunk"]["ground_penetration_m"] == pytest.approx(0.05, abs=0.01)
    assert rows["with_nan"]["failures"] == ["unreadable"]
    assert "NaN" in rows["with_nan"]["error"] and "with_nan.npz" in rows["with_nan"]["error"]
    assert report["summary"]["failed"] == 3


# ---------------------------------------------------------------------------------------------
# Split


def test_split_is_reproducible_disjoint_and_stable(tmp_path, kin):
    src = tmp_path / "clips"
    for i in range(12):
        write_as(src / f"clip{i:02d}", make_clip(kin, key=f"clip{i:02d}", num_frames=4), "npz")
    first = split_motions.split(str(src), str(tmp_path / "a"), 0.3, seed=0)
    again = split_motions.split(str(src), str(tmp_path / "b"), 0.3, seed=0)
    assert first == again
    assert not set(first["train"]) & set(first["test"])
    assert sorted(first["train"] + first["test"]) == [f"clip{i:02d}" for i in range(12)]
    assert sorted(p.stem for p in (tmp_path / "a" / "test").iterdir()) == first["test"]
    assert json.loads((tmp_path / "a" / "split.json").read_text())["test"] == first["test"]
    # Adding clips leaves every existing assignment alone.
    for i in range(12, 20):
        write_as(src / f"clip{i:02d}", make_clip(kin, key=f"clip{i:02d}", num_frames=4), "npz")
    grown = split_motions.split(str(src), str(tmp_path / "c"), 0.3, seed=0)
    assert set(first["test"]) <= set(grown["test"])
    assert set(first["train"]) <= set(grown["train"])
    other = split_motions.split(str(src), str(tmp_path / "d"), 0.3, seed=1)
    assert other["test"] != grown["test"]


def test_split_multi_clip_pkl_into_two(tmp_path, kin):
    clips = [make_clip(kin, key=f"k{i}", num_frames=4) for i in range(10)]
    write_sonic_pkl(tmp_path / "all.pkl", clips)
    report = split_motions.split(str(tmp_path / "all.pkl"), str(tmp_path / "out"), 0.5, seed=0)
    assert report["train"] and report["test"]
    for side in ("train", "test"):
        assert sorted(joblib.load(tmp_path / "out" / side / "all.pkl")) == report[side]


# ---------------------------------------------------------------------------------------------
# Bad input through the CLI: exit code 2, one line naming file and clip, no traceback


def _bad_inputs(tmp_path: Path, kin) -> dict[str, tuple[Path, str]]:
    """name -> (file, text the error must contain besides file and clip)."""
    clip = make_clip(kin, key="bad")
    cases = {}
    npz = write_as(tmp_path / "trunc_npz" / "bad", clip, "npz")
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    cases["truncated_npz"] = (npz, "cannot be read")
    lafan = write_as(tmp_path / "trunc_lafan" / "bad", clip, "lafan_csv")
    lafan.write_text(lafan.read_text()[:-40])
    cases["truncated_lafan"] = (lafan, "truncated")
    unknown = write_as(tmp_path / "unknown" / "bad", clip, "csv")
    text = unknown.read_text().replace("left_knee_joint", "left_knee_jnt", 1)
    unknown.write_text(text)
    cases["unknown_joint"] = (unknown, "left_knee_jnt")
    degrees = RawClip(**{**clip.__dict__, "joint_pos": np.rad2deg(clip.joint_pos)})
    cases["degrees"] = (write_as(tmp_path / "deg" / "bad", degrees, "csv"), "degrees")
    nan = RawClip(**{**clip.__dict__, "joint_pos": clip.joint_pos.copy()})
    nan.joint_pos[7, 3] = np.nan
    cases["nan"] = (write_as(tmp_path / "nan" / "bad", nan, "lafan_csv"), "NaN")
    return cases


def test_bad_inputs_give_one_clear_line(tmp_path, kin):
    cases = _bad_inputs(tmp_path, kin)
    pkl = write_as(tmp_path / "trunc_pkl" / "bad", make_clip(kin, key="bad"), "pkl")
    pkl.write_bytes(pkl.read_bytes()[:200])
    cases["truncated_pkl"] = (pkl, "cannot be unpickled")
    script = str(REPO_ROOT / "data_process" / "convert_motions.py")
    # Started together: each run is mostly interpreter + mujoco start-up.
    procs = {name: subprocess.Popen([sys.executable, script, str(path),
                                     str(tmp_path / f"out_{name}.npz"), "--quiet"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (path, _) in cases.items()}
    for name, proc in procs.items():
        path, hint = cases[name]
        message = proc.communicate()[1].strip()
        assert proc.returncode == 2, (name, message)
        assert "Traceback" not in message, (name, message)
        assert len(message.splitlines()) == 1, (name, message)
        assert f"file '{path}'" in message and hint in message, (name, message)
        # A truncated PKL cannot name its clips; every other case must.
        assert name == "truncated_pkl" or "clip 'bad'" in message, (name, message)
