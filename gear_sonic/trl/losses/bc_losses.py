"""Behaviour cloning toward a teacher action computed by the env, fading to zero.

The teacher (teachers.py) runs in the env as an observation group (default `teacher_obs`, one
flat action-sized term such as `high_gain_reference_action`) that only this loss reads. The
rollout storage keeps it with every other group, so the target belongs to the state the student
actually visited (DAgger-style: no teacher rollouts). The weight falls linearly from `coef` to 0 over
`decay_iterations`, after which PPO alone owns the policy.
"""

from __future__ import annotations

import torch


class TeacherActionBC:
    def __init__(
        self, coef: float = 1.0, decay_iterations: int = 50, obs_group: str = "teacher_obs"
    ):
        if coef < 0 or decay_iterations < 1:
            raise ValueError("bc_loss: need coef >= 0 and decay_iterations >= 1")
        self.coef = float(coef)
        self.decay_iterations = int(decay_iterations)
        self.obs_group = obs_group

    def bind(self, env) -> None:
        """Check at start-up that the env computes the teacher group with one value per action."""
        groups = env.get_observations()
        if self.obs_group not in groups:
            raise ValueError(
                f"bc_loss.obs_group={self.obs_group!r}: the env has no such observation group "
                f"(groups: {sorted(groups)}); add one, e.g. "
                "`- /manager_env/observations/teacher: high_gain_reference` to the preset's "
                "defaults"
            )
        width = groups[self.obs_group].shape[-1]
        if width != env.num_actions:
            raise ValueError(
                f"bc_loss.obs_group={self.obs_group!r} has {width} values per env, the action has "
                f"{env.num_actions}; the group must hold exactly one teacher action"
            )

    def weight(self, iteration: int) -> float:
        return self.coef * max(0.0, 1.0 - iteration / self.decay_iterations)

    def __call__(
        self, action_mean: torch.Tensor, obs: dict, iteration: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (weighted loss, unweighted loss)."""
        loss = (action_mean - obs[self.obs_group]).square().mean()
        return self.weight(iteration) * loss, loss.detach()
