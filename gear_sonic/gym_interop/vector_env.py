"""An mjlab env as a gymnasium `VectorEnv` (autoreset mode SAME_STEP), numpy in and out.

mjlab resets finished envs inside `step`, which loses their last observation. Here the env runs
with `auto_reset=False`: after a step, the finished envs' observations are kept as
`info["final_obs"]` (batched like the observations; rows where `info["_final_obs"]` is True are
meaningful), then those envs are reset and the returned observations are their first ones. So
`step` returns what gymnasium's SAME_STEP mode promises and SB3 needs for time-out bootstrapping.

Tensors cross to numpy once per step (one copy per observation tensor); nothing loops over envs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gear_sonic.gym_interop.spaces import action_space, observation_space


class ManagerVectorEnv(VectorEnv):
    metadata: ClassVar[dict] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, env, action_bound: float | None = None):
        """`env`: an mjlab `ManagerBasedRlEnv`; actions are clipped to +-action_bound if given."""
        self.env = env
        env.cfg.auto_reset = False  # finished envs are reset here, after their final obs is read
        self.num_envs = env.num_envs
        self.device = torch.device(env.device)
        self.action_bound = action_bound
        self.single_observation_space = observation_space(env.observation_manager)
        self.single_action_space = action_space(env.action_manager.total_action_dim, action_bound)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None

    @property
    def step_dt(self) -> float:
        return self.env.step_dt

    @property
    def max_episode_length(self) -> int:
        return self.env.max_episode_length

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.env.seed(int(seed))
        obs, _ = self.env.reset()
        return to_numpy(obs), {}

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.step_torch(
            torch.as_tensor(np.asarray(actions, dtype=np.float32), device=self.device)
        )
        info = {key: to_numpy(value) for key, value in info.items()}
        return (
            to_numpy(obs),
            to_numpy(reward),
            to_numpy(terminated),
            to_numpy(truncated),
            info,
        )

    def step_torch(self, actions: torch.Tensor):
        """The same step on tensors (what the SB3 adapter and the evaluator call)."""
        actions = actions.reshape(self.num_envs, -1)
        if self.action_bound is not None:
            actions = actions.clamp(-self.action_bound, self.action_bound)
        obs, reward, terminated, truncated, _ = self.env.step(actions)
        done = terminated | truncated
        info: dict[str, Any] = {}
        if bool(done.any()):
            done_ids = done.nonzero(as_tuple=False).squeeze(-1)
            info["final_obs"] = _map(obs, torch.clone)
            info["_final_obs"] = done
            reset_obs, reset_extras = self.env.reset(env_ids=done_ids)
            # Unfinished envs keep the observation of their step, finished ones get the new one.
            obs = _merge(obs, reset_obs, done)
            log = reset_extras.get("log") or {}
            info["log"] = {k: float(v) for k, v in log.items() if _is_scalar(v)}
        return obs, reward, terminated, truncated, info

    def close_extras(self, **kwargs) -> None:
        self.env.close()


def to_numpy(value):
    """Tensors (or dicts of them) -> float32/bool numpy copies; other values pass through."""
    if isinstance(value, torch.Tensor):
        out = value.detach().to("cpu", copy=True)
        return out.numpy() if out.dtype == torch.bool else out.float().numpy()
    if isinstance(value, dict):
        return {key: to_numpy(item) for key, item in value.items()}
    return value


def _map(obs, fn):
    if isinstance(obs, dict):
        return {key: _map(value, fn) for key, value in obs.items()}
    return fn(obs)


def _merge(step_obs, reset_obs, done: torch.Tensor):
    if isinstance(step_obs, dict):
        return {key: _merge(step_obs[key], reset_obs[key], done) for key in step_obs}
    mask = done.reshape(-1, *([1] * (step_obs.dim() - 1)))
    return torch.where(mask, reset_obs, step_obs)


def _is_scalar(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, (int, float))
