"""Shared check of the deploy observation contract: the torch-free loop vs the env, step by step."""

from __future__ import annotations

import numpy as np
import torch


def worst_actor_obs_gap(env, loop, obs, steps: int) -> float:
    """Step a 1-env `env` with seeded random actions, putting the env's state into `loop` before
    each step; -> the largest |deploy actor_obs - env actor_obs| seen. Fails if the env resets."""
    generator = torch.Generator().manual_seed(1)
    worst = 0.0
    for step in range(steps):
        sim = env.env.sim.data
        loop.robot.set_state(sim.qpos[0].cpu().numpy(), sim.qvel[0].cpu().numpy())
        deploy = loop.observe()["actor_obs"]
        worst = max(worst, float(np.abs(deploy - obs["actor_obs"].numpy()).max()))
        action = 0.3 * torch.randn(1, env.num_actions, generator=generator)
        obs, _, done, _ = env.step(action)
        assert not bool(done[0]), f"the env reset at step {step}"
        loop.last_action[:] = action[0].numpy()
        loop.frame += 1
    return worst
