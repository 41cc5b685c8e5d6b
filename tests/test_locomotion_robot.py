"""Go2 / Go1 robot files: the Go2 model loads, stands under its default PD, stays small; the
robot registry names the known robots when asked for an unknown one."""

from __future__ import annotations

import re

import mujoco
import numpy as np
import pytest
from mjlab.entity import Entity

from gear_sonic.envs.manager_env.builder import build_env_cfg
from gear_sonic.envs.manager_env.robots import ROBOTS, get_robot
from gear_sonic.envs.manager_env.robots.go2 import GO2_JOINT_NAMES, GO2_XML
from tests.conftest import REPO_ROOT, compose_config

GO2_PRESET = "+exp=manager/locomotion/go2_velocity_cpu"


def compile_with_ground(robot_name: str) -> mujoco.MjModel:
    spec = Entity(get_robot(robot_name).entity_cfg()).spec
    spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[5.0, 5.0, 0.1])
    model = spec.compile()
    model.opt.timestep = 0.005
    return model


def stand_for(model: mujoco.MjModel, seconds: float) -> mujoco.MjData:
    """Start at the entity's initial state and hold it with the PD targets = that pose."""
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)  # mjlab writes init_state as keyframe 0
    data.ctrl[:] = [data.qpos[model.jnt_qposadr[j]] for j in model.actuator_trnid[:, 0]]
    for _ in range(int(seconds / model.opt.timestep)):
        mujoco.mj_step(model, data)
    return data


def test_go2_loads_with_its_joints_and_pd_actuators():
    model = compile_with_ground("go2")
    joints = [model.joint(i).name for i in range(1, model.njnt)]
    assert tuple(joints) == GO2_JOINT_NAMES == get_robot("go2").joint_names
    assert model.nu == 12 and model.nmesh == 0
    assert 15.0 < model.body_mass.sum() < 15.5  # Menagerie's 15.2 kg
    kp = model.actuator_gainprm[:, 0]
    assert np.all(kp > 30.0) and np.all(model.dof_armature[6:] > 0.0)


@pytest.mark.parametrize("robot_name", ["go2", "go1"])
def test_quadruped_stands_under_default_pd_for_one_second(robot_name):
    model = compile_with_ground(robot_name)
    data = stand_for(model, 1.0)
    height, quat = data.qpos[2], data.qpos[3:7]
    tilt = 1.0 - 2.0 * (quat[1] ** 2 + quat[2] ** 2)  # cos of the angle between base z and up
    assert height > 0.23, f"{robot_name} sank to {height:.3f} m"
    assert tilt > 0.99 and np.abs(data.qvel[:3]).max() < 0.05
    foot = get_robot(robot_name).foot_geoms_regex
    touching = {model.geom(c.geom[i]).name for c in data.contact[: data.ncon] for i in (0, 1)}
    assert touching - {""} and all(re.match(foot, n) for n in touching if n), touching


def test_go2_model_is_licensed_credited_and_small():
    folder = GO2_XML.parent
    assert (folder / "LICENSE").read_text().startswith("Copyright")
    assert "Menagerie" in (folder / "README.md").read_text()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 3 * 1024 * 1024, size


def test_unknown_robot_lists_the_known_ones():
    assert {"g1", "go1", "go2"} <= set(ROBOTS)
    with pytest.raises(KeyError, match=r"'spot'.*\['g1', 'go1', 'go2'\]"):
        get_robot("spot")
    cfg = compose_config(GO2_PRESET, "manager_env.config.robot=spot")
    with pytest.raises(KeyError, match=r"manager_env.config.robot='spot'.*go2"):
        build_env_cfg(cfg.manager_env, num_envs=2)


def test_go2_preset_builds_an_env_cfg_with_the_velocity_command():
    gpu = build_env_cfg(compose_config("+exp=manager/locomotion/go2_velocity").manager_env, 2)
    twist = gpu.commands["twist"]
    assert twist.rel_standing_envs == 0.1 and twist.ranges.lin_vel_x == (-1.0, 1.0)
    assert twist.heading_command and twist.ranges.lin_vel_y == (-1.0, 1.0)
    # The CPU demo walks forward only (config/locomotion_cpu/forward_walking.yaml).
    cfg = compose_config(GO2_PRESET)
    env_cfg = build_env_cfg(cfg.manager_env, num_envs=2)
    forward = env_cfg.commands["twist"]
    assert forward.rel_standing_envs == 0.0 and not forward.heading_command
    assert forward.ranges.lin_vel_x == (0.0, 1.0) and forward.ranges.lin_vel_y == (0.0, 0.0)
    assert forward.ranges.ang_vel_z == (0.0, 0.0) and forward.ranges.heading is None
    assert {"feet_ground_contact", "base_contact", "undesired_contacts"} <= {
        s.name for s in env_cfg.scene.sensors
    }
    assert str(REPO_ROOT) in str(GO2_XML)
