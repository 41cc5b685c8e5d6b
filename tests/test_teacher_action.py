"""The high-gain reference teacher (gear_sonic/trl/losses/teachers.py, computed by the env as the
observation group teacher_obs) that the CPU demo clones."""

from __future__ import annotations

import pytest
import torch

from gear_sonic.envs import create_manager_env
from gear_sonic.envs.manager_env.builder import build_env_cfg
from gear_sonic.envs.manager_env.mdp import observations
from gear_sonic.envs.manager_env.terms import EnvConfigError, resolve_function
from gear_sonic.trl.losses import teachers
from tests.conftest import CPU_PRESET, EXACT_RESET, compose_config

TEACHER = "manager_env.observations.teacher_obs.terms.action.params"


def standing_env(clip, *overrides):
    cfg = compose_config(CPU_PRESET, *EXACT_RESET,
                         f"manager_env.commands.motion.motion_file={clip}", *overrides)
    return create_manager_env(cfg, device="cpu", num_envs=2)


def steps_until_failure(env, act, max_steps: int) -> int:
    obs = env.reset()
    for step in range(max_steps):
        obs, _, done, extras = env.step(act(obs))
        if (done & ~extras["time_outs"]).any():
            return step
    return max_steps


def test_teacher_lives_beside_the_bc_loss_not_among_observations():
    env_cfg = build_env_cfg(compose_config(CPU_PRESET).manager_env, num_envs=2)
    term = env_cfg.observations["teacher_obs"].terms["action"]
    assert term.func is teachers.high_gain_reference_action
    assert not hasattr(observations, "high_gain_reference_action")
    assert "actor_obs" in env_cfg.observations  # the policy's groups are untouched
    with pytest.raises(EnvConfigError, match=r"teacher_obs.*cannot import 'gear_sonic.trl.nope'"):
        resolve_function("gear_sonic.trl.nope.teacher", "observations", "teacher_obs.func")


@pytest.fixture(scope="module")
def teacher_env(standing_clip):
    env = standing_env(standing_clip)
    yield env
    env.close()


def test_zero_gain_teacher_is_the_plain_reference_replay(standing_clip):
    env = standing_env(standing_clip, f"{TEACHER}.gain=0.0", f"{TEACHER}.damping=0.0")
    obs = env.reset()
    for _ in range(3):
        torch.testing.assert_close(obs["teacher_obs"], env.reference_actions(), atol=1e-5, rtol=0)
        obs, *_ = env.step(torch.zeros(env.num_envs, env.num_actions))
    env.close()


def test_teacher_amplifies_the_leg_error_only(teacher_env):
    """Displace one knee and one elbow: only the knee's teacher target moves, by gain x error."""
    teacher_env.reset()
    robot = teacher_env.command().robot
    names = list(robot.joint_names)
    knee, elbow = names.index("left_knee_joint"), names.index("left_elbow_joint")
    before = teacher_env.env.observation_manager.compute_group("teacher_obs").clone()
    joint_pos = robot.data.joint_pos.clone()
    joint_pos[:, knee] += 0.1
    joint_pos[:, elbow] += 0.1
    robot.write_joint_state_to_sim(joint_pos, robot.data.joint_vel.clone())
    teacher_env.env.sim.forward()
    after = teacher_env.env.observation_manager.compute_group("teacher_obs")
    term = teacher_env.env.action_manager.get_term("joint_pos")
    scale = torch.as_tensor(term.scale).expand_as(after)
    moved = (after - before) * scale  # back to radians of target
    # gain 5 x -0.1
    torch.testing.assert_close(moved[:, knee], torch.full((2,), -0.5), atol=1e-4, rtol=0)
    others = torch.ones(moved.shape[1], dtype=torch.bool)
    others[knee] = False
    assert moved[:, others].abs().max() < 1e-4


def test_teacher_keeps_the_standing_clip_up_longer_than_plain_replay(teacher_env, standing_clip):
    """The point of the teacher: feedback a replay lacks (measured 41 -> 100+ steps standing)."""
    length = int(teacher_env.command().clip_num_frames.min()) - 1
    replay_env = standing_env(standing_clip, f"{TEACHER}.gain=0.0", f"{TEACHER}.damping=0.0")
    replay = steps_until_failure(replay_env, lambda obs: obs["teacher_obs"], length)
    replay_env.close()
    teacher = steps_until_failure(teacher_env, lambda obs: obs["teacher_obs"], length)
    assert teacher >= replay + 25, (teacher, replay)
