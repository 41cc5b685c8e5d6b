"""The decaying teacher-action behaviour-cloning loss: on plain tensors, and in the trainer with a
plain MLP actor (no token model)."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from gear_sonic.trl.losses.bc_losses import TeacherActionBC
from gear_sonic.trl.losses.token_losses import AuxLossSet
from gear_sonic.trl.modules.actor_critic_modules import Actor, Critic
from gear_sonic.trl.trainer import TRLAuxLossPPOTrainer
from tests.test_ppo_trainer import PointEnv, TinyBackbone, small_cfg


class FakeEnvGroups:
    """Only what `bind` reads: the observation groups and the action count."""

    def __init__(self, groups: dict, num_actions: int):
        self._groups, self.num_actions = groups, num_actions

    def get_observations(self) -> dict:
        return self._groups


def test_zero_when_the_action_is_the_teachers():
    loss = TeacherActionBC(coef=2.0, decay_iterations=10)
    teacher = torch.tensor([[0.5, -1.0, 2.0]])
    weighted, raw = loss(teacher.clone(), {"teacher_obs": teacher}, iteration=0)
    assert float(raw) == 0.0 and float(weighted) == 0.0


def test_positive_otherwise_and_fades_linearly():
    loss = TeacherActionBC(coef=2.0, decay_iterations=10)
    obs = {"teacher_obs": torch.tensor([[0.5, -1.0, 2.0]])}
    action = torch.zeros(1, 3, requires_grad=True)
    weighted, raw = loss(action, obs, iteration=0)
    assert float(raw) > 0 and torch.isclose(weighted, 2.0 * raw)
    weighted.backward()
    assert action.grad.abs().sum() > 0
    assert loss.weight(5) == 1.0 and loss.weight(10) == 0.0 and loss.weight(50) == 0.0


def test_bind_names_a_missing_or_misshapen_teacher_group():
    loss = TeacherActionBC()
    with pytest.raises(ValueError, match="no such observation group.*actor_obs"):
        loss.bind(FakeEnvGroups({"actor_obs": torch.zeros(2, 5)}, num_actions=3))
    with pytest.raises(ValueError, match="has 4 values per env, the action has 3"):
        loss.bind(FakeEnvGroups({"teacher_obs": torch.zeros(2, 4)}, num_actions=3))
    loss.bind(FakeEnvGroups({"teacher_obs": torch.zeros(2, 3)}, num_actions=3))


class TeacherPointEnv(PointEnv):
    """PointEnv plus a `teacher_obs` group: the action that steps straight to the target."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.observation_shapes["teacher_obs"] = (1,)

    def get_observations(self):
        obs = super().get_observations()
        obs["teacher_obs"] = (10.0 * (self.target - self.pos)).clamp(-1.0, 1.0)[:, None]
        return obs


def teacher_gap(actor, env) -> float:
    """Mean squared distance of the actor's mean action from the teacher's, on env states."""
    with torch.no_grad():
        obs = env.get_observations()
        return float((actor.act_inference(obs) - obs["teacher_obs"]).square().mean())


@pytest.mark.parametrize("coef", [0.0, 50.0])
def test_bc_loss_trains_a_plain_mlp_actor(coef):
    torch.manual_seed(0)
    env = TeacherPointEnv(num_envs=32)
    actor = Actor(TinyBackbone(), 1, init_std=0.3, std_min=0.01, std_max=1.0)
    critic = Critic(env.observation_shapes, hidden_dims=(16,), activation="elu")
    trainer = TRLAuxLossPPOTrainer(
        env, actor, critic, small_cfg(num_learning_epochs=2, schedule="fixed"),
        Accelerator(cpu=True), AuxLossSet({}),
        bc_loss=TeacherActionBC(coef=coef, decay_iterations=1000),
    )
    before = teacher_gap(actor, TeacherPointEnv(num_envs=256, seed=1))
    metrics = trainer.train(4)
    after = teacher_gap(actor, TeacherPointEnv(num_envs=256, seed=1))
    assert metrics["loss/teacher_bc"] > 0  # computed for the MLP actor, not silently skipped
    if coef > 0:  # the BC gradient reached the MLP: its mean moved onto the teacher's action
        assert after < 0.5 * before, (before, after)
    else:  # control: PPO alone does not do that in 4 iterations
        assert after > 0.8 * before, (before, after)
