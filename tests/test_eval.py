"""Checkpoint evaluation: metric functions on hand-made trajectories, and the CLI end to end."""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gear_sonic.envs.manager_env.robots.g1 import G1_TRACKED_BODIES
from gear_sonic.eval.metrics import (
    accel_dist, aggregate, body_groups, clip_metrics, mpjpe_g, mpjpe_l, mpjpe_pa, vel_dist,
)
from gear_sonic.eval.outputs import evaluation_name
from gear_sonic.utils.atomic_io import current_umask
from tests.conftest import CPU_PRESET, REPO_ROOT, SAMPLE_MOTIONS, compose_config
from tests.test_train_entry import TINY

BODIES = G1_TRACKED_BODIES
DT = 0.02


def trajectory(frames=6, bodies=len(BODIES)):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(frames, bodies, 3, generator=gen, dtype=torch.float64)


def test_constant_offset_is_global_error_only():
    ref = trajectory()
    robot = ref + torch.tensor([0.1, 0.0, 0.0], dtype=torch.float64)  # 10 cm on every body, anchor included
    assert mpjpe_g(ref, robot) == pytest.approx(100.0)
    assert mpjpe_l(ref, robot, anchor_index=0) == pytest.approx(0.0, abs=1e-9)
    assert mpjpe_pa(ref, robot) == pytest.approx(0.0, abs=1e-6)
    assert vel_dist(ref, robot) == pytest.approx(0.0, abs=1e-9)
    assert accel_dist(ref, robot) == pytest.approx(0.0, abs=1e-6)


def test_procrustes_removes_rotation_translation_and_scale():
    ref = trajectory()
    a = 0.7
    rot = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]],
                       dtype=torch.float64)
    robot = 1.4 * ref @ rot.T + torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    assert mpjpe_g(ref, robot) > 100.0
    assert mpjpe_pa(ref, robot) == pytest.approx(0.0, abs=1e-6)


def test_velocity_and_acceleration_are_per_frame_millimetres():
    # Hand-computed: the reference stands still; robot body 0 moves 1, 2, 3 mm along x in
    # successive frames, body 1 stays put. PHC/SONIC take the mean over frames and bodies of
    # |difference robot - difference reference| in mm, without dividing by dt.
    ref = torch.zeros(4, 2, 3, dtype=torch.float64)
    robot = torch.zeros(4, 2, 3, dtype=torch.float64)
    robot[:, 0, 0] = torch.tensor([0.0, 0.001, 0.003, 0.006])
    # first differences of body 0: 1, 2, 3 mm; body 1: 0, 0, 0 -> mean 1.0 mm per frame
    assert vel_dist(ref, robot) == pytest.approx(1.0)
    # second differences of body 0: 1, 1 mm; body 1: 0, 0 -> mean 0.5 mm per frame^2
    assert accel_dist(ref, robot) == pytest.approx(0.5)
    # A drift of 0.5 m/s at 50 Hz is 10 mm per frame, whatever the reference does.
    frames = 10
    t = torch.arange(frames, dtype=torch.float64)[:, None, None] * DT
    ref = trajectory(frames)
    robot = ref + t * torch.tensor([0.5, 0.0, 0.0], dtype=torch.float64)
    assert vel_dist(ref, robot) == pytest.approx(10.0)
    assert accel_dist(ref, robot) == pytest.approx(0.0, abs=1e-9)
    # 2 m/s^2 upwards: second difference 2 * 0.02^2 m = 0.8 mm per frame^2.
    robot = ref + 0.5 * t**2 * torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64)
    assert accel_dist(ref, robot) == pytest.approx(0.8)


def test_frame_weighted_aggregates_pool_every_frame():
    short, long = trajectory(3), trajectory(7)
    gen = torch.Generator().manual_seed(1)
    noisy = lambda x: x + 0.02 * torch.randn(x.shape, generator=gen, dtype=torch.float64)  # noqa: E731
    robots = [noisy(short), noisy(long)]
    rows = [{"clip": name, "success": True, "progress": 1.0, **clip_metrics(r, b, BODIES)}
            for name, r, b in (("short", short, robots[0]), ("long", long, robots[1]))]
    agg = aggregate(rows)
    # PHC: one mean over the frames of all clips (per clip: 3 and 7 frames, 2 and 6 differences).
    pooled_g = mpjpe_g(torch.cat([short, long]), torch.cat(robots))
    assert agg["mpjpe_g_all_frame_weighted"] == pytest.approx(pooled_g)
    assert agg["mpjpe_g_all"] == pytest.approx((rows[0]["mpjpe_g"] + rows[1]["mpjpe_g"]) / 2)
    assert agg["mpjpe_g_all"] != pytest.approx(pooled_g)
    vel = (2 * rows[0]["vel_dist"] + 6 * rows[1]["vel_dist"]) / 8
    assert agg["vel_dist_all_frame_weighted"] == pytest.approx(vel)
    accel = (1 * rows[0]["accel_dist"] + 5 * rows[1]["accel_dist"]) / 6
    assert agg["accel_dist_succ_frame_weighted"] == pytest.approx(accel)
    assert rows[0]["frames_scored"] == 3 and rows[1]["frames_scored"] == 7


def test_pa_mpjpe_only_for_groups_of_four_bodies_or_more():
    ref = trajectory()
    robot = ref + 0.01 * trajectory().flip(0)
    row = clip_metrics(ref, robot, BODIES)
    groups = body_groups(BODIES)
    assert len(groups["foot"]) == 2 and len(groups["vr_3points"]) == 3
    assert "mpjpe_pa_foot" not in row and "mpjpe_pa_vr_3points" not in row
    assert row["mpjpe_pa_legs"] > 0.0 and row["mpjpe_pa"] > 0.0
    assert "mpjpe_g_foot" in row and "mpjpe_l_vr_3points" in row
    with pytest.raises(ValueError, match="at least 4 bodies"):
        mpjpe_pa(ref[:, :3], robot[:, :3])


def test_groups_select_bodies_by_name():
    groups = {k: [BODIES[i] for i in v] for k, v in body_groups(BODIES).items()}
    assert groups["legs"] == [n for n in BODIES if any(p in n for p in ("hip", "knee", "ankle"))]
    assert groups["foot"] == ["left_ankle_roll_link", "right_ankle_roll_link"]
    assert groups["vr_3points"] == ["torso_link", "left_wrist_yaw_link", "right_wrist_yaw_link"]
    assert groups["other_upper_bodies"] == [
        "left_shoulder_roll_link", "left_elbow_link", "right_shoulder_roll_link", "right_elbow_link",
    ]
    # An offset on the feet only shows up in the foot and leg groups.
    ref = trajectory()
    robot = ref.clone()
    robot[:, [3, 6]] += torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64)
    row = clip_metrics(ref, robot, BODIES)
    assert row["mpjpe_g_foot"] == pytest.approx(100.0)
    assert row["mpjpe_g_legs"] == pytest.approx(100.0 / 3)
    assert row["mpjpe_g_vr_3points"] == pytest.approx(0.0)
    assert row["mpjpe_g"] == pytest.approx(200.0 / len(BODIES))


def test_aggregate_splits_successful_and_all():
    rows = [
        {"clip": "a", "success": True, "progress": 1.0, "mpjpe_g": 10.0},
        {"clip": "b", "success": False, "progress": 0.5, "mpjpe_g": 30.0},
    ]
    agg = aggregate(rows)
    assert agg["success_rate"] == 0.5 and agg["progress_rate"] == 0.75
    assert agg["mpjpe_g_succ"] == 10.0 and agg["mpjpe_g_all"] == 20.0


# ---------------------------------------------------------------- end to end on a tiny checkpoint
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from gear_sonic.train_agent_trl import run_training

    tmp = tmp_path_factory.mktemp("eval")
    cfg = compose_config(CPU_PRESET, *TINY, f"experiment_dir={tmp / 'exp'}", "algo.config.num_learning_iterations=1")
    exp_dir = run_training(cfg)
    motions = tmp / "motions"
    motions.mkdir()
    for name in ("reach_forward.npz", "side_step_left.npz", "run_jog.npz"):
        shutil.copy(SAMPLE_MOTIONS / name, motions / name)
    return exp_dir / "last.pt", motions


def run_eval_cli(*args, timeout=300):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "gear_sonic" / "eval_agent_trl.py"), *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=env,
    )


def test_cli_writes_metrics_for_every_clip(checkpoint):
    ckpt, motions = checkpoint
    # 2 envs for 3 clips: two rounds. Another motion set than training: its own folder.
    result = run_eval_cli(f"+checkpoint={ckpt}", "++num_envs=2", f"++motion_file={motions}")
    assert result.returncode == 0, result.stderr[-3000:]
    name = evaluation_name(motion_file=motions, train_motion_file="data/motions")
    path = ckpt.parent / "eval" / "step_000001" / name / "metrics_eval.json"
    assert name.startswith("motions-motions-") and f"wrote {path}" in result.stdout
    data = json.loads(path.read_text())
    for key in ("success_rate", "progress_rate", "mpjpe_g_all", "mpjpe_l_all", "mpjpe_pa_all", "vel_dist_all",
                "accel_dist_all", "mpjpe_g_legs_all", "mpjpe_g_foot_all", "mpjpe_g_all_frame_weighted",
                "vel_dist_succ_frame_weighted"):
        assert key in data["aggregate"], key
    assert "mpjpe_pa_foot_all" not in data["aggregate"]
    assert data["units"]["mpjpe_g"] == "mm" and "per frame (50 Hz)" in data["units"]["vel_dist"]
    assert data["evaluation"] == {"name": name, "label": f"step 1 · {name}"}
    assert sorted(r["clip"] for r in data["clips"]) == ["reach_forward", "run_jog", "side_step_left"]
    for row in data["clips"]:
        assert 0 < row["progress"] <= 1 and row["frames_reached"] <= row["frames"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()
    assert "reach_forward" in result.stdout and "side_step_left" in result.stdout  # whole names
    assert not list(REPO_ROOT.glob("outputs")) and not (ckpt.parent / ".hydra").exists()


def test_three_encoders_leave_three_results_and_labels(checkpoint):
    from gear_sonic.eval.report import write_report
    from gear_sonic.eval_agent_trl import ResultExistsError, run_eval

    ckpt, motions = checkpoint
    one_clip = motions.parent / "one_clip"
    one_clip.mkdir(exist_ok=True)
    shutil.copy(motions / "reach_forward.npz", one_clip / "reach_forward.npz")

    def eval_cfg(*overrides):
        with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
            return compose("base_eval", overrides=[f"+checkpoint={ckpt}", "++num_envs=1",
                                                   f"++motion_file={one_clip}", *overrides])

    paths = [run_eval(eval_cfg(f"++use_encoder={enc}")) for enc in ("g1", "teleop", "smpl")]
    assert len(set(paths)) == 3 and all(p.is_file() for p in paths)
    assert [json.loads(p.read_text())["use_encoder"] for p in paths] == ["g1", "teleop", "smpl"]
    html = write_report(ckpt.parent).read_text()
    motion_set = evaluation_name(motion_file=one_clip, train_motion_file="data/motions")
    for enc in ("g1", "teleop", "smpl"):
        assert f"<td class=\"key\">step 1 · enc-{enc}+{motion_set}</td>" in html
    before = paths[1].read_text()
    with pytest.raises(ResultExistsError, match=r"\+\+overwrite=true replaces it"):
        run_eval(eval_cfg("++use_encoder=teleop"))
    assert paths[1].read_text() == before


def test_run_once_plays_a_single_round(checkpoint):
    from gear_sonic.eval.evaluate import evaluate_checkpoint

    ckpt, motions = checkpoint
    cfg = OmegaConf.load(ckpt.parent / "config.yaml")
    cfg.manager_env.commands.motion.motion_file = str(motions)
    out = evaluate_checkpoint(cfg, ckpt, num_envs=2, run_once=True)
    assert out["run_once"] is True and len(out["clips"]) == 2  # 3 clips, one round of 2 envs


def test_use_encoder_forces_the_teleop_path(checkpoint):
    from gear_sonic.eval.evaluate import evaluate_checkpoint

    ckpt, motions = checkpoint
    cfg = OmegaConf.load(ckpt.parent / "config.yaml")
    cfg.manager_env.commands.motion.motion_file = str(motions)
    out = evaluate_checkpoint(cfg, ckpt, num_envs=4, use_encoder="teleop", record_masks=True)
    names = ("g1", "teleop", "smpl")
    teleop = torch.tensor([float(n == "teleop") for n in names])
    for mask in out["encoder_masks"]:
        assert torch.equal(mask, teleop.expand_as(mask))
    assert len(out["clips"]) == 3


def test_bad_inputs_fail_with_clear_messages(checkpoint, tmp_path):
    ckpt, _ = checkpoint
    result = run_eval_cli("+checkpoint=/no/such/model.pt")
    assert result.returncode == 2 and "error: +checkpoint=/no/such/model.pt: no such file" in result.stderr
    assert "Traceback" not in result.stderr
    lone = tmp_path / "a" / "b" / "last.pt"
    lone.parent.mkdir(parents=True)
    shutil.copy(ckpt, lone)
    result = run_eval_cli(f"+checkpoint={lone}")
    assert result.returncode == 2 and "no config.yaml" in result.stderr, result.stderr[-2000:]
    assert str(lone.parent / "config.yaml") in result.stderr and str(tmp_path / "a" / "config.yaml") in result.stderr
    assert "Traceback" not in result.stderr


def test_smpl_encoder_needs_smpl_data(checkpoint, tmp_path):
    import numpy as np

    from gear_sonic.eval.evaluate import evaluate_checkpoint

    ckpt, motions = checkpoint
    with np.load(motions / "reach_forward.npz") as data:
        arrays = {k: data[k] for k in data.files if "smpl" not in k}
    np.savez(tmp_path / "no_smpl.npz", **arrays)
    cfg = OmegaConf.load(ckpt.parent / "config.yaml")
    cfg.manager_env.commands.motion.motion_file = str(tmp_path)
    with pytest.raises(ValueError, match="no_smpl"):
        evaluate_checkpoint(cfg, ckpt, num_envs=1, use_encoder="smpl")


def test_checkpoint_from_another_architecture_names_the_parameter(checkpoint, tmp_path):
    ckpt, _ = checkpoint
    state = torch.load(ckpt, weights_only=True)
    key = next(k for k, v in state["actor"].items() if v.dim() == 2)
    state["actor"][key] = torch.zeros(3, 5)
    torch.save(state, tmp_path / "bad.pt")
    shutil.copy(ckpt.parent / "config.yaml", tmp_path / "config.yaml")
    result = run_eval_cli(f"+checkpoint={tmp_path / 'bad.pt'}", f"++output_dir={tmp_path / 'out'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert key in result.stderr and "(3, 5)" in result.stderr and "Traceback" not in result.stderr


def test_worst_clips_orders_by_progress_then_error():
    from gear_sonic.eval_agent_trl import worst_clips

    rows = [{"clip": "ok", "progress": 1.0, "mpjpe_g": 50.0}, {"clip": "fell", "progress": 0.2, "mpjpe_g": 10.0},
            {"clip": "sloppy", "progress": 1.0, "mpjpe_g": 90.0}]
    assert worst_clips({"clips": rows}, 2) == ["fell", "sloppy"]
    rows.append({"clip": "failed_late", "success": False, "progress": 0.9, "mpjpe_g": 5.0})
    assert worst_clips({"clips": rows}, 2) == ["failed_late", "fell"]  # failures first
