"""Time-major (T, N) rollout buffers, GAE, and mini-batches split over envs.

Observations keep the env's layout: a concatenated group is a (T, N, *shape) tensor, the
tokenizer group a dict of such tensors. Mini-batches take whole envs (all T steps of a subset of
envs), so every env lands in exactly one mini-batch per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch

from gear_sonic.trl.modules.base_module import as_shape


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_values: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation on (T, N) tensors -> (advantages, returns).

    delta_t = r_t + gamma * V_{t+1} * (1 - done_t) - V_t
    A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1},   returns = A + V.
    `last_values` (N,) is V of the observation after the last step. Time-outs are handled by
    the caller, who folds gamma * V into the reward of the truncated step.
    """
    not_done = 1.0 - dones.to(values.dtype)
    next_values = torch.cat([values[1:], last_values.reshape(1, -1).to(values.dtype)], dim=0)
    deltas = rewards + gamma * next_values * not_done - values
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[0])
    for t in reversed(range(values.shape[0])):
        running = deltas[t] + gamma * lam * not_done[t] * running
        advantages[t] = running
    return advantages, advantages + values


@dataclass
class MiniBatch:
    """One mini-batch, flattened to (T * n_envs, ...) rows."""

    obs: dict[str, torch.Tensor | dict[str, torch.Tensor]]
    actions: torch.Tensor
    old_log_probs: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    old_values: torch.Tensor
    env_ids: torch.Tensor  # which envs this mini-batch holds


def _alloc_obs(shapes: Mapping, lead: tuple[int, int], device) -> dict:
    out = {}
    for name, shape in shapes.items():
        if isinstance(shape, Mapping):
            out[name] = _alloc_obs(shape, lead, device)
        else:
            out[name] = torch.zeros(*lead, *as_shape(shape), device=device)
    return out


def _write_obs(buffers: dict, obs: Mapping, step: int) -> None:
    for name, buf in buffers.items():
        if isinstance(buf, dict):
            _write_obs(buf, obs[name], step)
        else:
            buf[step].copy_(obs[name])


def _select_envs(buffers: dict, env_ids: torch.Tensor) -> dict:
    """(T, N, *s) -> (T * n, *s) for the chosen envs, recursively."""
    out = {}
    for name, buf in buffers.items():
        if isinstance(buf, dict):
            out[name] = _select_envs(buf, env_ids)
        else:
            out[name] = buf[:, env_ids].flatten(0, 1)
    return out


def iter_obs_tensors(buffers: Mapping, prefix: str = "obs") -> Iterator[tuple[str, torch.Tensor]]:
    """("obs/critic_obs", tensor), ("obs/tokenizer_obs/term", tensor), ..."""
    for name, buf in buffers.items():
        if isinstance(buf, Mapping):
            yield from iter_obs_tensors(buf, f"{prefix}/{name}")
        else:
            yield f"{prefix}/{name}", buf


class RolloutStorage:
    def __init__(
        self,
        num_steps: int,
        num_envs: int,
        obs_shapes: Mapping,
        num_actions: int,
        device: torch.device | str = "cpu",
    ):
        self.num_steps = int(num_steps)
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        lead = (self.num_steps, self.num_envs)
        self.obs = _alloc_obs(obs_shapes, lead, self.device)
        self.actions = torch.zeros(*lead, int(num_actions), device=self.device)
        self.log_probs = torch.zeros(lead, device=self.device)
        self.values = torch.zeros(lead, device=self.device)
        self.rewards = torch.zeros(lead, device=self.device)  # time-out bootstrap included
        self.dones = torch.zeros(lead, dtype=torch.bool, device=self.device)
        self.time_outs = torch.zeros(lead, dtype=torch.bool, device=self.device)
        self.advantages = torch.zeros(lead, device=self.device)
        self.returns = torch.zeros(lead, device=self.device)
        self.step = 0

    def add(
        self,
        obs: Mapping,
        actions: torch.Tensor,
        log_probs: torch.Tensor,
        values: torch.Tensor,
        rewards: torch.Tensor,
        dones: torch.Tensor,
        time_outs: torch.Tensor | None,
        gamma: float,
    ) -> None:
        """Store one step; `obs` and `values` belong to the state the action was taken in.

        A truncated episode did not really end, so the value of the state it was cut in is
        credited back: r += gamma * V(s_t) * time_out (the post-step state was already reset).
        """
        if self.step >= self.num_steps:
            raise RuntimeError(f"rollout storage is full ({self.num_steps} steps); call clear()")
        t = self.step
        _write_obs(self.obs, obs, t)
        self.actions[t].copy_(actions)
        self.log_probs[t].copy_(log_probs.reshape(-1))
        self.values[t].copy_(values.reshape(-1))
        rewards = rewards.reshape(-1).to(self.rewards.dtype)
        if time_outs is not None:
            time_outs = time_outs.reshape(-1).bool()
            self.time_outs[t].copy_(time_outs)
            rewards = rewards + gamma * values.reshape(-1) * time_outs
        else:
            self.time_outs[t].zero_()
        self.rewards[t].copy_(rewards)
        self.dones[t].copy_(dones.reshape(-1).bool())
        self.step += 1

    def clear(self) -> None:
        self.step = 0

    def compute_returns(self, last_values: torch.Tensor, gamma: float, lam: float) -> None:
        self.advantages, self.returns = compute_gae(
            self.rewards, self.values, self.dones, last_values.reshape(-1), gamma, lam
        )

    def mini_batch_generator(
        self, num_mini_batches: int, num_epochs: int, shuffle: bool = True
    ) -> Iterator[MiniBatch]:
        """num_epochs x num_mini_batches batches; each epoch partitions the envs."""
        if num_mini_batches > self.num_envs:
            raise ValueError(
                f"cannot split {self.num_envs} envs into {num_mini_batches} mini-batches"
            )
        for _ in range(num_epochs):
            order = (
                torch.randperm(self.num_envs, device=self.device)
                if shuffle
                else torch.arange(self.num_envs, device=self.device)
            )
            # tensor_split: sizes differ by at most one when N is not a multiple.
            for env_ids in torch.tensor_split(order, num_mini_batches):
                yield self.mini_batch(env_ids)

    def mini_batch(self, env_ids: torch.Tensor) -> MiniBatch:
        """Every step of the envs `env_ids`, flattened to (steps x envs) samples."""
        return MiniBatch(
            obs=_select_envs(self.obs, env_ids),
            actions=self.actions[:, env_ids].flatten(0, 1),
            old_log_probs=self.log_probs[:, env_ids].flatten(),
            advantages=self.advantages[:, env_ids].flatten(),
            returns=self.returns[:, env_ids].flatten(),
            old_values=self.values[:, env_ids].flatten(),
            env_ids=env_ids,
        )
