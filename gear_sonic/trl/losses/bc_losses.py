"""Behaviour cloning toward the reference joint targets, decaying to zero.

With SONIC's action (target = default pose + scale * action) a fresh policy holds the default
pose and falls within a few steps on any clip that is not standing still; PPO alone needs far
more samples than a CPU run has to discover that the target should follow the reference. This
loss pulls the action mean toward a_ref = (reference joints - default pose) / scale, i.e. "replay
the reference through the PD controllers", and fades out linearly so PPO owns the policy after.
"""

from __future__ import annotations

import torch

REFERENCE_TERM = "command_multi_future_nonflat"  # row 0 = the current reference frame


class ReferenceActionBC:
    def __init__(self, coef: float = 1.0, decay_iterations: int = 50, action_name: str = "joint_pos"):
        if coef < 0 or decay_iterations < 1:
            raise ValueError("bc_loss: need coef >= 0 and decay_iterations >= 1")
        self.coef = float(coef)
        self.decay_iterations = int(decay_iterations)
        self.action_name = action_name
        self.offset: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None

    def bind(self, env) -> None:
        """Read the default pose and action scale from the env's joint position action term."""
        term = env.env.action_manager.get_term(self.action_name)
        num_actions = env.num_actions
        self.offset = torch.as_tensor(term.offset, device=env.device).expand(env.num_envs, num_actions)[0].clone()
        self.scale = torch.as_tensor(term.scale, device=env.device).expand(env.num_envs, num_actions)[0].clone()

    def weight(self, iteration: int) -> float:
        return self.coef * max(0.0, 1.0 - iteration / self.decay_iterations)

    def __call__(self, action_mean: torch.Tensor, obs: dict, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (weighted loss, unweighted loss)."""
        if self.offset is None:
            raise RuntimeError("ReferenceActionBC.bind(env) must be called before training")
        reference = obs["tokenizer_obs"][REFERENCE_TERM][:, 0, : action_mean.shape[-1]]
        target = (reference - self.offset) / self.scale
        loss = (action_mean - target).square().mean()
        return self.weight(iteration) * loss, loss.detach()
