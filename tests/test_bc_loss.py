"""The decaying teacher-action behaviour-cloning loss, on plain tensors."""

from __future__ import annotations

import pytest
import torch

from gear_sonic.trl.losses.bc_losses import TeacherActionBC


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
