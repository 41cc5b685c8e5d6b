"""The deploy loop's numpy clip reader gives the training motion library's frames, on the paths
the sample clips (stored bodies at 50 Hz) do not take: other frame rates, FK, finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from gear_sonic.deploy.errors import DeployInputError
from gear_sonic.deploy.motion import load_motion
from gear_sonic.envs.manager_env.robots.g1 import G1_TRACKED_BODIES, g1_entity_cfg
from gear_sonic.utils.motion_lib import MotionLib
from tests.conftest import SAMPLE_MOTIONS

SOURCE = SAMPLE_MOTIONS / "walk_turn_left.npz"
TOLERANCE = 1e-5
FIELDS = ("joint_pos", "joint_vel", "body_pos_w", "body_quat_w", "body_lin_vel_w",
          "body_ang_vel_w", "smpl_joints")


@pytest.fixture(scope="module")
def robot_model():
    return g1_entity_cfg().spec_fn().compile()


def _variant(tmp_path, name, fps, keep):
    with np.load(SOURCE) as npz:
        data = {k: npz[k] for k in npz.files if k in keep}
    data["fps"] = np.array([fps], np.float32)
    path = tmp_path / f"{name}.npz"
    np.savez(path, **data)
    return path


@pytest.mark.parametrize("name, fps, keep", [
    ("fk_30hz", 30.0, {"joint_pos", "joint_names", "root_pos", "root_quat", "smpl_joints"}),
    ("bodies_60hz", 60.0, {"joint_pos", "joint_names", "joint_vel", "body_pos_w", "body_quat_w",
                           "body_lin_vel_w", "body_ang_vel_w", "body_names", "smpl_joints"}),
])
def test_deploy_clip_matches_motion_library(tmp_path, robot_model, name, fps, keep):
    path = _variant(tmp_path, name, fps, keep)
    library = MotionLib(path, mj_model=robot_model, body_names=G1_TRACKED_BODIES, target_fps=50.0)
    joints = [robot_model.joint(j).name for j in range(1, robot_model.njnt)]
    clip = load_motion(path, joints, list(G1_TRACKED_BODIES), fps=50.0, model=robot_model)
    assert clip.num_frames == int(library.clip_num_frames[0])
    state = library.state_at_frames(0, np.arange(clip.num_frames))
    for field in FIELDS:
        expected = getattr(state, field).numpy()
        diff = np.abs(getattr(clip, field) - expected).max()
        assert diff <= TOLERANCE, (field, diff)


def test_clip_without_root_or_bodies_is_refused(tmp_path, robot_model):
    path = _variant(tmp_path, "joints_only", 50.0, {"joint_pos", "joint_names"})
    joints = [robot_model.joint(j).name for j in range(1, robot_model.njnt)]
    with pytest.raises(DeployInputError, match="neither body poses nor a root trajectory"):
        load_motion(path, joints, list(G1_TRACKED_BODIES), fps=50.0, model=robot_model)
