"""Config errors name the YAML key and say what to do, before any simulation starts."""

from __future__ import annotations

import pytest

from gear_sonic.envs.manager_env.builder import build_env_cfg
from gear_sonic.envs.manager_env.terms import EnvConfigError
from tests.conftest import CPU_PRESET, RELEASE_PRESET, compose_config


def build(*overrides):
    cfg = compose_config(RELEASE_PRESET, *overrides)
    return build_env_cfg(cfg.manager_env, num_envs=2)


def test_release_preset_builds_an_mjlab_cfg():
    env_cfg = build()
    assert env_cfg.decimation == 4 and env_cfg.sim.mujoco.timestep == 0.005
    assert set(env_cfg.observations) == {"actor_obs", "critic_obs", "tokenizer_obs"}
    assert env_cfg.rewards["tracking_vr_3point_local"].weight == 2.0
    assert env_cfg.terminations["motion_end"].time_out


def test_cpu_preset_has_the_same_structure():
    release = compose_config(RELEASE_PRESET).manager_env
    cpu = compose_config(CPU_PRESET).manager_env
    for section in ("rewards", "terminations", "events", "commands", "actions"):
        assert set(release[section]) == set(cpu[section]), section
    # The CPU demo adds only the teacher group its behaviour-cloning loss reads.
    assert set(cpu.observations) - set(release.observations) == {"teacher_obs"}
    for group in release.observations:
        assert release.observations[group] == cpu.observations[group], group


def test_evaluation_drops_training_only_events():
    cfg = compose_config(RELEASE_PRESET)
    assert "push_robot" in build_env_cfg(cfg.manager_env, num_envs=2).events
    assert "push_robot" not in build_env_cfg(cfg.manager_env, num_envs=2, evaluation=True).events


@pytest.mark.parametrize(
    "override, message",
    [
        ("manager_env.rewards.feet_acc.func=joint_acc_l3", "manager_env.rewards.feet_acc.func"),
        ("++manager_env.rewards.feet_acc.params.sigma=1.0", "manager_env.rewards.feet_acc.params.sigma"),
        ("manager_env.rewards.tracking_anchor_pos.params.std=wide", "manager_env.rewards.tracking_anchor_pos.params.std"),
        ("~manager_env.rewards.tracking_anchor_pos.params.std", "manager_env.rewards.tracking_anchor_pos.params.std"),
        ("manager_env.rewards.tracking_anchor_pos.weight=heavy", "manager_env.rewards.tracking_anchor_pos.weight"),
        ("manager_env.observations.actor_obs.terms.joint_pos.func=joint_position", "manager_env.observations.actor_obs.terms.joint_pos.func"),
        ("manager_env.events.push_robot.mode=sometimes", "manager_env.events.push_robot.mode"),
        ("++manager_env.commands.motion.motion_fps=30", "manager_env.commands.motion"),
        ("manager_env.commands.motion.motion_file=no/such/dir", "manager_env.commands.motion.motion_file"),
        ("manager_env.config.robot=h1", "manager_env.config.robot"),
    ],
)
def test_bad_config_names_the_key(override, message):
    with pytest.raises((EnvConfigError, KeyError)) as err:
        build(override)
    assert message in str(err.value)


def test_a_task_builds_only_the_robot_sensors_it_names():
    from gear_sonic.envs.manager_env.builder import _sensors
    from gear_sonic.envs.manager_env.robots import get_robot

    g1 = get_robot("g1")
    assert [s.name for s in _sensors(g1, ["undesired_contacts"])] == ["undesired_contacts"]
    assert {s.name for s in _sensors(g1, None)} >= {"undesired_contacts", "feet_contact"}
    with pytest.raises(EnvConfigError, match=r"\['feet'\] are not sensors of robot 'g1'.*feet_contact"):
        _sensors(g1, ["feet"])
