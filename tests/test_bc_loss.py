"""The decaying reference-action behaviour-cloning loss, on plain tensors."""

from __future__ import annotations

import torch

from gear_sonic.trl.losses.bc_losses import REFERENCE_TERM, ReferenceActionBC


def make_loss() -> ReferenceActionBC:
    loss = ReferenceActionBC(coef=2.0, decay_iterations=10)
    loss.offset = torch.full((3,), 0.5)
    loss.scale = torch.full((3,), 0.25)
    return loss


def obs_with_reference(joints: torch.Tensor) -> dict:
    frames = torch.zeros(joints.shape[0], 10, 6)
    frames[:, 0, :3] = joints  # row 0 = current frame, positions first
    return {"tokenizer_obs": {REFERENCE_TERM: frames}}


def test_zero_when_the_action_replays_the_reference():
    loss = make_loss()
    joints = torch.tensor([[0.5, 0.75, 0.25]])
    target = (joints - 0.5) / 0.25
    weighted, raw = loss(target, obs_with_reference(joints), iteration=0)
    assert float(raw) == 0.0 and float(weighted) == 0.0


def test_positive_otherwise_and_fades_linearly():
    loss = make_loss()
    obs = obs_with_reference(torch.tensor([[0.5, 0.75, 0.25]]))
    action = torch.zeros(1, 3, requires_grad=True)
    weighted, raw = loss(action, obs, iteration=0)
    assert float(raw) > 0 and torch.isclose(weighted, 2.0 * raw)
    weighted.backward()
    assert action.grad.abs().sum() > 0
    assert loss.weight(5) == 1.0 and loss.weight(10) == 0.0 and loss.weight(50) == 0.0
