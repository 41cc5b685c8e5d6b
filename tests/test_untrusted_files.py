"""Opening a stranger's motion PKL never runs its code (issue 18); trust_pickle opts out."""

from __future__ import annotations

import datetime
import os
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import mujoco
import numpy as np
import pytest

from data_process import convert_motions, inspect_motions, split_motions, validate_motions
from gear_sonic.utils.motion_lib import MotionDataError, MotionLib, read_motion_file
from gear_sonic.utils.motion_lib.safe_pickle import UntrustedPickleError, load_motion_pickle
from tests.conftest import RELEASE_PRESET, compose_config

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_FRAMES, NUM_JOINTS, FPS = 12, 29, 30.0
# os.system pickles under the name of the module that defines it (posix on Linux).
SYSTEM_CLASS = f"{os.system.__module__}.system"


class TouchFile:
    """The attack: unpickling calls os.system('touch <marker>')."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def sonic_clip(extra: dict | None = None) -> dict:
    """A SONIC-layout clip dict (G1 standing still, xyzw root quaternion)."""
    t = np.arange(NUM_FRAMES) / FPS
    root_pos = np.stack([0.1 * t, 0 * t, 0.76 + 0 * t], axis=1)
    root_rot = np.tile([0.0, 0.0, 0.0, 1.0], (NUM_FRAMES, 1))
    dof = 0.05 * np.sin(t[:, None] + np.arange(NUM_JOINTS))
    clip = {"root_trans_offset": root_pos, "root_rot": root_rot, "dof": dof.astype(np.float32),
            "pose_aa": np.zeros((NUM_FRAMES, NUM_JOINTS + 1, 3)), "fps": np.float64(FPS)}
    clip.update(extra or {})
    return clip


@pytest.fixture()
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


@pytest.fixture(params=[0, 3], ids=["plain", "compressed"])
def evil_pkl(request, tmp_path, marker) -> Path:
    path = tmp_path / "evil.pkl"
    joblib.dump({"walk": sonic_clip({"payload": TouchFile(marker)})}, path, compress=request.param)
    return path


@pytest.fixture()
def odd_pkl(tmp_path) -> Path:
    """Harmless, but holds a global outside the allow-list (a datetime)."""
    path = tmp_path / "odd.pkl"
    joblib.dump({"walk": sonic_clip({"recorded": datetime.date(2024, 5, 1)})}, path)
    return path


@pytest.fixture(scope="module")
def g1_model() -> mujoco.MjModel:
    from mjlab.asset_zoo.robots.unitree_g1.g1_constants import G1_XML

    return mujoco.MjModel.from_xml_path(str(G1_XML))


def assert_refused(exc: BaseException, path: Path, cls: str) -> None:
    message = str(exc)
    assert str(path) in message and f"'{cls}'" in message and "\n" not in message, message


# --- the payload is refused and never runs ---------------------------------------------------


def test_reader_refuses_payload(evil_pkl, marker):
    with pytest.raises(UntrustedPickleError) as info:
        read_motion_file(evil_pkl)
    assert_refused(info.value, evil_pkl, SYSTEM_CLASS)
    assert not marker.exists()


def test_motion_lib_refuses_payload(evil_pkl, marker, g1_model):
    with pytest.raises(UntrustedPickleError) as info:
        MotionLib(evil_pkl.parent, g1_model, ["pelvis"])  # a folder holding the file
    assert_refused(info.value, evil_pkl, SYSTEM_CLASS)
    assert not marker.exists()


def test_inspect_cli_refuses_payload(evil_pkl, marker):
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "data_process" / "inspect_motions.py"), str(evil_pkl)],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert str(evil_pkl) in line and SYSTEM_CLASS in line
    assert not marker.exists()


def test_data_tools_refuse_payload(evil_pkl, marker, tmp_path):
    with pytest.raises(UntrustedPickleError):
        split_motions.split(str(evil_pkl), str(tmp_path / "split"), 0.5, seed=0)
    with pytest.raises(UntrustedPickleError):
        convert_motions.convert(str(evil_pkl), str(tmp_path / "out.npz"), None, "g1", None,
                                jobs=1, show_progress=False)
    (row,) = validate_motions.validate_path(str(evil_pkl), "g1")
    assert not row["ok"] and SYSTEM_CLASS in row["error"]
    assert not marker.exists()


def test_object_arrays_are_read_through_the_allow_list(tmp_path, marker, monkeypatch):
    """joblib stores object arrays as a nested pickle; joblib < 1.5 read it with a plain
    pickle.load. Simulate that reader: the payload must still be refused."""
    from joblib.numpy_pickle import NumpyArrayWrapper

    plain_read = NumpyArrayWrapper.read_array

    def old_joblib_read_array(self, unpickler, ensure_native_byte_order):
        if self.dtype.hasobject:
            return pickle.load(unpickler.file_handle)
        return plain_read(self, unpickler, ensure_native_byte_order)

    monkeypatch.setattr(NumpyArrayWrapper, "read_array", old_joblib_read_array)
    evil, fine = tmp_path / "evil.pkl", tmp_path / "fine.pkl"
    joblib.dump({"walk": sonic_clip({"tags": np.array(["a", TouchFile(marker)], dtype=object)})},
                evil)
    joblib.dump({"walk": sonic_clip({"tags": np.array(["a", {"b": 1}], dtype=object)})}, fine)
    with pytest.raises(UntrustedPickleError) as info:
        load_motion_pickle(evil)
    assert_refused(info.value, evil, SYSTEM_CLASS)
    assert not marker.exists()
    assert load_motion_pickle(fine)["walk"]["tags"].tolist() == ["a", {"b": 1}]


def test_refusal_covers_every_global_outside_the_list(odd_pkl):
    with pytest.raises(UntrustedPickleError) as info:
        read_motion_file(odd_pkl)
    assert_refused(info.value, odd_pkl, "datetime.date")


# --- ordinary files still load ---------------------------------------------------------------


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("xz", 3)])
def test_joblib_sonic_pkl_loads(tmp_path, compress):
    path = tmp_path / "walk.pkl"
    entry = sonic_clip({"smpl_joints": np.zeros((NUM_FRAMES, 24, 3))})
    joblib.dump({"walk": entry, "run": sonic_clip()}, path, compress=compress)
    clips = read_motion_file(path)
    assert [c.key for c in clips] == ["walk", "run"]
    np.testing.assert_allclose(clips[0].joint_pos, entry["dof"])
    np.testing.assert_allclose(clips[0].root_pos, entry["root_trans_offset"])
    np.testing.assert_allclose(clips[0].root_quat, np.tile([1.0, 0, 0, 0], (NUM_FRAMES, 1)))
    assert clips[0].fps == FPS and clips[0].smpl_joints.shape == (NUM_FRAMES, 24, 3)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_pickles_of_arrays_load(tmp_path, protocol):
    """Files written with pickle.dump (numpy's own reduce helpers, any protocol)."""
    path = tmp_path / "walk.pkl"
    data = {"walk": sonic_clip({"names": np.array(["a", "b"]), "meta": (1, 2.5, None, b"x")})}
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = load_motion_pickle(path)["walk"]
    np.testing.assert_array_equal(loaded["dof"], data["walk"]["dof"])
    assert loaded["names"].tolist() == ["a", "b"] and loaded["meta"] == (1, 2.5, None, b"x")
    assert isinstance(loaded["fps"], np.float64)


# --- the opt-out -----------------------------------------------------------------------------


def test_trust_pickle_opts_out(odd_pkl, g1_model, tmp_path, capsys):
    assert [c.key for c in read_motion_file(odd_pkl, trust_pickle=True)] == ["walk"]
    lib = MotionLib(odd_pkl, g1_model, ["pelvis"], trust_pickle=True)
    assert lib.num_clips == 1
    assert inspect_motions.main([str(odd_pkl)]) == 2
    assert "datetime.date" in capsys.readouterr().err
    assert inspect_motions.main([str(odd_pkl), "--trust-pickle"]) == 0
    assert split_motions.main([str(odd_pkl), str(tmp_path / "split"), "--trust-pickle"]) == 0
    (row,) = validate_motions.validate_path(str(odd_pkl), "g1", trust_pickle=True)
    assert "error" not in row


def test_trust_pickle_is_a_motion_command_key():
    from gear_sonic.envs.manager_env.builder import build_env_cfg

    cfg = compose_config(RELEASE_PRESET, "manager_env.commands.motion.trust_pickle=true")
    assert build_env_cfg(cfg.manager_env, num_envs=2).commands["motion"].trust_pickle is True
    default = compose_config(RELEASE_PRESET).manager_env.commands.motion.trust_pickle
    assert default is False


def test_every_pkl_tool_has_the_flag(capsys):
    from data_process import preview_motions

    for tool in (inspect_motions, validate_motions, convert_motions, split_motions,
                 preview_motions):
        with pytest.raises(SystemExit):
            tool.main(["--help"])
        assert "--trust-pickle" in capsys.readouterr().out, tool.__name__


def test_truncated_file_is_a_motion_data_error(tmp_path):
    path = tmp_path / "cut.pkl"
    joblib.dump({"walk": sonic_clip()}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(MotionDataError, match="cannot be unpickled"):
        read_motion_file(path)
