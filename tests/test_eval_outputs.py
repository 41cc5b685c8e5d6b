"""Small eval utilities: atomic writes keep plain-write permissions, safe file names, keyed
evaluation folders, exact-replay config, the console table."""

from __future__ import annotations

import io
import os
import stat

import pytest
from omegaconf import OmegaConf

from gear_sonic.eval.exact_replay import apply_exact_replay, exact_reset_overrides
from gear_sonic.eval.outputs import evaluation_dir, evaluation_name, motion_set_id
from gear_sonic.utils.atomic_io import atomic_torch_save, atomic_write_text
from gear_sonic.utils.safe_names import path_inside, safe_filename
from tests.conftest import CPU_PRESET, compose_config


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_atomic_write_gives_the_mode_of_a_plain_write(tmp_path, mask):
    old = os.umask(mask)
    try:
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        atomic = atomic_write_text("x", tmp_path / "report.html")
        saved = atomic_torch_save({"a": 1}, tmp_path / "model.pt")
    finally:
        os.umask(old)
    assert _mode(atomic) == _mode(plain) == 0o666 & ~mask
    assert _mode(saved) == 0o666 & ~mask


def test_atomic_write_keeps_an_existing_files_mode(tmp_path, umask_022):
    path = tmp_path / "done.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic_write_text("new", path)
    assert path.read_text() == "new" and _mode(path) == 0o640
    assert not list(tmp_path.glob(".done.json.*"))


@pytest.mark.parametrize("name", ["../escape", "../../x", "a/b", "/etc/passwd", "..", ".", "",
                                  "walk\\x", "clip\x00name", "é/../é"])
def test_safe_filename_never_leaves_the_folder(tmp_path, name):
    path = path_inside(tmp_path, name, ".mp4")
    assert path.parent == tmp_path and "/" not in safe_filename(name)
    assert path.name not in (".mp4", "..mp4") or path.name.startswith("_")


def test_safe_filename_keeps_ordinary_names():
    assert safe_filename("walk_forward-01.v2") == "walk_forward-01.v2"
    assert safe_filename("../escape") == ".._escape"
    assert len(safe_filename("x" * 500)) == 80


def test_evaluation_names_say_what_differs(tmp_path):
    motions = tmp_path / "walks"
    motions.mkdir()
    (motions / "a.npz").write_bytes(b"12345")
    assert evaluation_name() == ""
    assert evaluation_name(motion_file=motions, train_motion_file=motions) == ""
    assert evaluation_name(use_encoder="teleop") == "enc-teleop"
    assert evaluation_name(run_once=True) == "run_once"
    set_id = motion_set_id(motions)
    assert set_id.startswith("walks-") and len(set_id) == len("walks-") + 8
    name = evaluation_name("smpl", motions, "data/motions", True)
    assert name == f"enc-smpl+motions-{set_id}+run_once"
    assert evaluation_dir(tmp_path, 60, name) == tmp_path / "eval" / "step_000060" / name
    assert evaluation_dir(tmp_path, 60) == tmp_path / "eval" / "step_000060"
    other = tmp_path / "other" / "walks"  # same folder name, other content: another id
    other.mkdir(parents=True)
    (other / "a.npz").write_bytes(b"123456")
    assert motion_set_id(other) != set_id
    # A locomotion sweep given on the command line gets its own folder, one per sweep.
    fast = evaluation_name(sweep={"eval_commands": [[1.0, 0.0, 0.0]]})
    assert fast.startswith("sweep-") and len(fast) == len("sweep-") + 8
    assert fast != evaluation_name(sweep={"eval_commands": [[0.5, 0.0, 0.0]]})
    assert evaluation_name(sweep={}) == ""


def test_exact_replay_applies_to_composed_and_saved_configs(tmp_path):
    cfg = compose_config(CPU_PRESET)
    assert "foot_pos_xyz" in cfg.manager_env.terminations
    assert any(t.get("train_only") for t in cfg.manager_env.events.values())
    saved = tmp_path / "config.yaml"
    OmegaConf.save(cfg, saved)
    for source in (cfg, OmegaConf.load(saved)):
        out = apply_exact_replay(source)
        motion = out.manager_env.commands.motion
        assert motion.pose_range is None and motion.sampling_mode == "start"
        assert list(motion.joint_position_range) == [0.0, 0.0]
        assert set(out.manager_env.terminations) == {
            "time_out", "motion_end", "anchor_pos", "anchor_ori_full", "ee_body_pos"}
        assert out.manager_env.events and not any(
            t.get("train_only") for t in out.manager_env.events.values())
        assert out.manager_env.config.episode_length_s >= 1e5
        assert apply_exact_replay(source, events="none").manager_env.events == {}
    assert "foot_pos_xyz" in cfg.manager_env.terminations  # the input is not modified
    with pytest.raises(ValueError, match="events='some'"):
        apply_exact_replay(cfg, events="some")
    overrides = exact_reset_overrides()
    assert "manager_env.commands.motion.sampling_mode=start" in overrides
    assert "manager_env/events=none" in overrides


def test_console_table_shows_whole_clip_names():
    from rich.console import Console

    from gear_sonic.eval_agent_trl import print_table

    name = "walk_turn_left_then_stop_and_wave_0042"
    row = {"clip": name, "success": True, "progress": 1.0, "mpjpe_g": 1234.5, "mpjpe_l": 5.0,
           "mpjpe_pa": 4.0, "vel_dist": 1.5, "accel_dist": 0.7}
    result = {"aggregate": {"num_clips": 1, "success_rate": 1.0, "progress_rate": 1.0},
              "clips": [row], "iteration": 60, "step_dt": 0.02}
    for console in (Console(file=io.StringIO()), Console(file=io.StringIO(), width=60)):
        print_table(result, console)  # a pipe (80 columns) and a narrow terminal
        text = console.file.getvalue()
        assert name in text and "1234.5" in text and "accel_dist" in text and "…" not in text
        assert "mm per frame" in text
