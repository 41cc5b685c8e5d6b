"""One env of a task as a plain `gymnasium.Env` (what `gymnasium.make` returns).

It steps a one-env `ManagerVectorEnv` without autoreset: after `terminated` or `truncated` the
caller resets, as gymnasium expects (stepping on would raise mjlab's "must be reset" error).
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium
import numpy as np
import torch

from gear_sonic.gym_interop.vector_env import ManagerVectorEnv, to_numpy


class ManagerSingleEnv(gymnasium.Env):
    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, vector_env: ManagerVectorEnv):
        if vector_env.num_envs != 1:
            raise ValueError(
                f"ManagerSingleEnv needs a one-env vector env, got {vector_env.num_envs}"
            )
        self.vector_env = vector_env
        self.observation_space = vector_env.single_observation_space
        self.action_space = vector_env.single_action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.vector_env.reset(seed=seed)
        return _first(obs), info

    def step(self, action):
        actions = torch.as_tensor(
            np.asarray(action, dtype=np.float32), device=self.vector_env.device
        )
        bound = self.vector_env.action_bound
        if bound is not None:
            actions = actions.clamp(-bound, bound)
        obs, reward, terminated, truncated, _ = self.vector_env.env.step(actions.reshape(1, -1))
        return (
            _first(to_numpy(obs)),
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            {},
        )

    def close(self) -> None:
        self.vector_env.close()


def _first(obs):
    if isinstance(obs, dict):
        return {key: _first(value) for key, value in obs.items()}
    return obs[0]
