"""A batched `ManagerVectorEnv` as an SB3 `VecEnv`: one env step for all envs, no per-env loop.

SB3 policies take one observation, so one observation group is exposed (by default the policy
group). Finished envs carry `terminal_observation` and `TimeLimit.truncated` in their info, as
SB3 expects (it bootstraps time-outs from them); the env has already reset them (SAME_STEP).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnv

from gear_sonic.gym_interop.vector_env import ManagerVectorEnv

POLICY_GROUPS = ("actor_obs", "actor", "policy")  # our presets, mjlab's tasks, rsl_rl's naming


def default_obs_group(env: ManagerVectorEnv) -> str:
    groups = list(env.single_observation_space.spaces)
    return next((g for g in POLICY_GROUPS if g in groups), groups[0])


class SB3VecEnv(VecEnv):
    def __init__(self, env: ManagerVectorEnv, obs_group: str | None = None):
        groups = env.single_observation_space.spaces
        obs_group = obs_group or default_obs_group(env)
        if obs_group not in groups or not hasattr(groups[obs_group], "shape"):
            flat = [g for g, space in groups.items() if hasattr(space, "shape")]
            raise ValueError(
                f"sb3.obs_group={obs_group!r}: not a concatenated observation group of this task; "
                f"choose one of {flat}"
            )
        self.env = env
        self.obs_group = obs_group
        self.render_mode = None
        self._actions: torch.Tensor | None = None
        super().__init__(env.num_envs, groups[obs_group], env.single_action_space)

    def reset(self) -> np.ndarray:
        seed = self._seeds[0]
        obs, _ = self.env.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        return obs[self.obs_group]

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = torch.as_tensor(
            np.asarray(actions, dtype=np.float32), device=self.env.device
        )

    def step_wait(self):
        obs, reward, terminated, truncated, info = self.env.step_torch(self._actions)
        group = obs[self.obs_group].detach().to("cpu", copy=True).float().numpy()
        dones = (terminated | truncated).cpu().numpy()
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        finished = np.flatnonzero(dones)
        if finished.size:  # only the finished envs get entries
            final = info["final_obs"][self.obs_group].cpu().float().numpy()
            cut = (truncated & ~terminated).cpu().numpy()
            for i in finished:
                infos[i]["terminal_observation"] = final[i]
                infos[i]["TimeLimit.truncated"] = bool(cut[i])
        return group, reward.detach().cpu().float().numpy(), dones, infos

    def close(self) -> None:
        self.env.close()

    # SB3 asks these per env; every env of a batched task is the same object.
    def get_attr(self, attr_name: str, indices=None) -> list:
        value = (
            getattr(self, attr_name) if attr_name == "render_mode" else getattr(self.env, attr_name)
        )
        return [value] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list:
        raise NotImplementedError(f"SB3VecEnv: env_method({method_name!r}) is not supported")

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)
