"""A tanh-squashed Gaussian actor: actions = bound * tanh(u), u ~ Normal(backbone(obs), std).

Bounded actions without clipping: the log-probability includes the change of variables,
log p(a) = log N(u) - sum log(bound * (1 - tanh(u)^2)), with u = atanh(a / bound) recovered from
the stored action. The entropy is the pre-squash Gaussian's (the squashed one has no closed
form), which is what the PPO entropy bonus then acts on.
"""

from __future__ import annotations

import torch

from gear_sonic.trl.modules.actor_critic_modules import Actor

_EPS = 1e-6


class SquashedGaussianActor(Actor):
    def __init__(self, backbone, num_actions: int, bound: float = 1.0, **kwargs):
        super().__init__(backbone, num_actions, **kwargs)
        if bound <= 0:
            raise ValueError(f"actor.bound must be > 0, got {bound}")
        self.bound = float(bound)

    def _log_prob(self, mean: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        squashed = (actions / self.bound).clamp(-1.0 + _EPS, 1.0 - _EPS)
        pre_tanh = torch.atanh(squashed)
        jacobian = torch.log(self.bound * (1.0 - squashed.square()) + _EPS).sum(-1)
        return super()._log_prob(mean, pre_tanh) - jacobian

    def act(self, obs, **backbone_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        mean, _ = self._mean_and_aux(obs, need_aux=False, **backbone_kwargs)
        actions = self.bound * torch.tanh(mean + self.action_std * torch.randn_like(mean))
        return actions, self._log_prob(mean, actions)

    def act_inference(self, obs, **backbone_kwargs) -> torch.Tensor:
        mean, _ = self._mean_and_aux(obs, need_aux=False, **backbone_kwargs)
        return self.bound * torch.tanh(mean)

    forward = act_inference
