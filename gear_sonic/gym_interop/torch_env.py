"""Any gymnasium env as the batched torch env `TRLPPOTrainer` steps (`+exp=gym/ppo gym.env_id=...`).

gymnasium's own vectoriser runs `num_envs` copies with SAME_STEP autoreset, so a step returns the
next episode's first observation for finished envs, as our mjlab envs do. The observation is one
group, `obs` (a Box, flattened); actions are clipped to the Box bounds.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from omegaconf import DictConfig, OmegaConf

OBS_GROUP = "obs"


class GymnasiumTorchEnv:
    def __init__(
        self,
        env_id: str,
        num_envs: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        env_kwargs: dict | None = None,
        vectorization_mode: str = "sync",
    ):
        try:
            self.envs = gymnasium.make_vec(
                env_id,
                num_envs=int(num_envs),
                vectorization_mode=vectorization_mode,
                vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
                **(env_kwargs or {}),
            )
        except gymnasium.error.Error as err:
            raise ValueError(f"gym.env_id={env_id!r}: {err}") from None
        obs_space = self.envs.single_observation_space
        act_space = self.envs.single_action_space
        # ValueError (not TypeError): a config choice, reported by the entry point in one line.
        if not isinstance(act_space, spaces.Box):
            raise ValueError(  # noqa: TRY004
                f"gym.env_id={env_id!r}: needs a Box action space, got {act_space}"
            )
        if not isinstance(obs_space, spaces.Box):
            raise ValueError(  # noqa: TRY004
                f"gym.env_id={env_id!r}: needs a Box observation space, got {obs_space}"
            )
        self.env_id = env_id
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.observation_shapes = {OBS_GROUP: (int(np.prod(obs_space.shape)),)}
        self.num_actions = int(np.prod(act_space.shape))
        self._low = torch.as_tensor(act_space.low, dtype=torch.float32).reshape(-1)
        self._high = torch.as_tensor(act_space.high, dtype=torch.float32).reshape(-1)
        obs, _ = self.envs.reset(seed=int(seed))
        self.envs.action_space.seed(int(seed))
        self._obs = self._to_torch(obs)

    @property
    def max_episode_length(self) -> int | None:
        spec = self.envs.spec
        return getattr(spec, "max_episode_steps", None) if spec is not None else None

    def get_observations(self) -> dict[str, torch.Tensor]:
        return self._obs

    def reset(self) -> dict[str, torch.Tensor]:
        obs, _ = self.envs.reset()
        self._obs = self._to_torch(obs)
        return self._obs

    def step(self, actions: torch.Tensor):
        """-> obs, reward (N,), done (N,) bool, extras with `time_outs` and `terminated`."""
        actions = torch.maximum(torch.minimum(actions.detach().cpu(), self._high), self._low)
        obs, reward, terminated, truncated, _ = self.envs.step(actions.numpy())
        self._obs = self._to_torch(obs)
        terminated = torch.as_tensor(terminated, device=self.device)
        truncated = torch.as_tensor(truncated, device=self.device)
        extras = {"time_outs": truncated & ~terminated, "terminated": terminated}
        reward = torch.as_tensor(reward, dtype=torch.float32, device=self.device)
        return self._obs, reward, terminated | truncated, extras

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def close(self) -> None:
        self.envs.close()

    def _to_torch(self, obs) -> dict[str, torch.Tensor]:
        flat = np.asarray(obs, dtype=np.float32).reshape(self.num_envs, -1)
        return {OBS_GROUP: torch.as_tensor(flat, device=self.device)}


def make_gymnasium_torch_env(cfg: DictConfig, device, seed: int) -> GymnasiumTorchEnv:
    """From the `gym` config section (config/gym/default.yaml)."""
    gym_cfg = cfg.gym
    if not gym_cfg.get("env_id"):
        raise ValueError("gym.env_id is empty: pass a gymnasium id, e.g. gym.env_id=Hopper-v5")
    if str(gym_cfg.env_id).startswith("gear_sonic/"):
        raise ValueError(
            f"gym.env_id={gym_cfg.env_id}: our own tasks train directly, with their +exp preset"
        )
    return GymnasiumTorchEnv(
        str(gym_cfg.env_id),
        num_envs=int(cfg.num_envs),
        device=device,
        seed=seed,
        env_kwargs=OmegaConf.to_container(gym_cfg.env_kwargs, resolve=True),
        vectorization_mode=str(gym_cfg.get("vectorization_mode", "sync")),
    )
