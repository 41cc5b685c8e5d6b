"""The committed synthetic sample motions (data/motions) are complete, consistent and plausible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_process.motion_gen.checks import (convex_hull, evaluate_clip, failed_checks,
                                            signed_distance_in_polygon)
from data_process.motion_gen.export import angular_velocity_world, load_clip
from data_process.motion_gen.robot import body_names, joint_names, load_model
from gear_sonic.utils.motion_lib.smpl_keypoints import SMPL_JOINT_NAMES, smpl_keypoints_from_bodies

MOTION_DIR = Path(__file__).resolve().parents[1] / "data" / "motions"
CLIP_FILES = sorted(MOTION_DIR.glob("*.npz"))
MAX_TOTAL_BYTES = 10 * 10**6  # 10 MB (decimal, the stricter reading)
FLOAT_KEYS = ("fps", "joint_pos", "joint_vel", "root_pos", "root_quat", "body_pos_w", "body_quat_w",
              "body_lin_vel_w", "body_ang_vel_w", "smpl_joints")


@pytest.fixture(scope="module", params=CLIP_FILES, ids=lambda p: p.stem)
def clip(request) -> dict:
    return load_clip(request.param)


def test_set_is_complete_and_small():
    assert len(CLIP_FILES) >= 30
    assert sum(p.stat().st_size for p in CLIP_FILES) <= MAX_TOTAL_BYTES
    names = " ".join(p.stem for p in CLIP_FILES)
    for kind in ("stand", "walk", "run", "backward", "side_step", "turn_in_place", "squat",
                 "wave", "reach"):
        assert kind in names, kind
    assert (MOTION_DIR / "README.md").exists()


def test_split_is_disjoint_and_covers_all_clips():
    split = json.loads((MOTION_DIR / "split.json").read_text())
    train, test = set(split["train"]), set(split["test"])
    assert not train & test
    assert train | test == {p.stem for p in CLIP_FILES}
    assert 0.05 <= len(test) / len(CLIP_FILES) <= 0.2


def test_layout_shapes_and_names(clip):
    model = load_model()
    num_frames = len(clip["joint_pos"])
    assert 4.0 <= num_frames / 50.0 <= 8.0
    assert clip["fps"].shape == (1,) and clip["fps"][0] == 50.0
    assert list(clip["joint_names"]) == joint_names(model)
    assert list(clip["body_names"]) == body_names(model)
    expected = {
        "joint_pos": (num_frames, 29), "joint_vel": (num_frames, 29), "root_pos": (num_frames, 3),
        "root_quat": (num_frames, 4), "body_pos_w": (num_frames, 30, 3),
        "body_quat_w": (num_frames, 30, 4),
        "body_lin_vel_w": (num_frames, 30, 3), "body_ang_vel_w": (num_frames, 30, 3),
        "smpl_joints": (num_frames, 24, 3), "foot_contact": (num_frames, 2),
    }
    for key, shape in expected.items():
        assert clip[key].shape == shape, key
    for key in FLOAT_KEYS:
        assert clip[key].dtype == np.float32 and np.isfinite(clip[key]).all(), key


def test_roots_bodies_and_velocities_are_consistent(clip):
    dt = 1.0 / 50.0
    np.testing.assert_allclose(clip["body_pos_w"][:, 0], clip["root_pos"], atol=1e-5)
    same_rotation = np.abs(np.sum(clip["body_quat_w"][:, 0] * clip["root_quat"], axis=-1))
    np.testing.assert_allclose(same_rotation, 1.0, atol=1e-4)  # stored with ~1e-5 precision
    np.testing.assert_allclose(np.linalg.norm(clip["body_quat_w"], axis=-1), 1.0, atol=1e-4)
    joint_vel = np.gradient(clip["joint_pos"], dt, axis=0)
    np.testing.assert_allclose(clip["joint_vel"], joint_vel, atol=2e-3)
    lin_vel = np.gradient(clip["body_pos_w"], dt, axis=0)
    np.testing.assert_allclose(clip["body_lin_vel_w"], lin_vel, atol=2e-3)
    ang = angular_velocity_world(clip["body_quat_w"].astype(np.float64), dt)
    np.testing.assert_allclose(clip["body_ang_vel_w"], ang, atol=5e-3)


def test_starts_and_ends_in_quiet_double_stance(clip):
    for frame in (0, -1):
        assert clip["foot_contact"][frame].all()
        assert np.abs(clip["joint_vel"][frame]).max() < 0.05


def test_smpl_keypoints_follow_the_bodies(clip):
    expected = smpl_keypoints_from_bodies(clip["body_pos_w"], clip["body_quat_w"],
                                          list(clip["body_names"]))
    np.testing.assert_allclose(clip["smpl_joints"], expected, atol=1e-4)
    joints = {name: clip["smpl_joints"][0, i] for i, name in enumerate(SMPL_JOINT_NAMES)}
    heights = [joints[name][2] for name in ("head", "neck", "pelvis", "L_knee", "L_ankle")]
    assert heights == sorted(heights, reverse=True)
    assert joints["L_hip"][1] > joints["R_hip"][1]


def test_clip_passes_plausibility_checks(clip):
    metrics = evaluate_clip(clip)
    assert failed_checks(metrics) == [], metrics


def test_support_polygon_distance():
    hull = convex_hull(np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]], dtype=float))
    assert len(hull) == 4
    assert signed_distance_in_polygon(np.array([0.5, 0.25]), hull) == pytest.approx(0.25)
    assert signed_distance_in_polygon(np.array([2.0, 0.5]), hull) == pytest.approx(-1.0)


def test_smpl_offsets_rotate_with_the_body():
    names = list(body_names(load_model()))
    pos = np.zeros((len(names), 3))
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (len(names), 1))
    upright = smpl_keypoints_from_bodies(pos, quat, names)
    # Rotating every body 90 degrees about z maps offset (x, y, z) to (-y, x, z).
    quarter_turn = np.tile([np.sqrt(0.5), 0.0, 0.0, np.sqrt(0.5)], (len(names), 1))
    turned = smpl_keypoints_from_bodies(pos, quarter_turn, names)
    expected = np.stack([-upright[:, 1], upright[:, 0], upright[:, 2]], axis=1)
    np.testing.assert_allclose(turned, expected, atol=1e-12)
