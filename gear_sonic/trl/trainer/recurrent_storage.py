"""Rollout storage for recurrent policies: the recurrent states are stored with every step, and
mini-batches are whole sequences.

A mini-batch takes whole envs, as the feed-forward storage does. Each env's T steps are cut into
segments at episode ends and every `sequence_length` steps (truncated back-propagation through
time); segments are padded to a common length L and stacked on dim 1, (L, S, ...), with a mask of
the real steps. A segment starts from the state stored at its first step (zero after an episode
end, since the modules zero it there). The flat tensors of the mini-batch (actions, advantages,
...) list the real steps in the order `padded[mask]` gives: time-major over the segments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from gear_sonic.trl.modules.recurrent_modules import SequenceBatch
from gear_sonic.trl.trainer.rollout_storage import MiniBatch, RolloutStorage


@dataclass
class SequenceMiniBatch(MiniBatch):
    sequence: SequenceBatch | None = None
    steps: torch.Tensor | None = None  # (rows,) the rollout step t of each flat row
    envs: torch.Tensor | None = None  # (rows,) the env of each flat row


def check_sequence_layout(
    num_steps_per_env: int, sequence_length: int, key_prefix: str = "algo.config"
) -> None:
    """A segment is cut from one rollout, so it cannot be longer than the rollout."""
    if sequence_length > num_steps_per_env:
        raise ValueError(
            f"{key_prefix}.sequence_length ({sequence_length}) is longer than "
            f"{key_prefix}.num_steps_per_env ({num_steps_per_env}): a rollout cannot hold a whole "
            f"sequence. Set sequence_length to at most {num_steps_per_env} (0 = the whole rollout)."
        )


def segment_layout(dones: torch.Tensor, sequence_length: int):
    """Cut (T, n) steps into segments at episode ends and every `sequence_length` steps.

    -> starts_t (S,), starts_env (S,), lengths (S,), and for every step in env-major order its
    segment and position, (n * T,) each."""
    num_steps, n = dones.shape
    t = torch.arange(num_steps, device=dones.device)
    starts = torch.zeros(n, num_steps, dtype=torch.bool, device=dones.device)
    starts[:, 0] = True
    starts[:, 1:] |= dones[:-1].T.bool()  # a new episode starts after a done
    if sequence_length > 0:
        starts |= (t % sequence_length == 0).unsqueeze(0)
    flat_starts = starts.flatten()  # env-major: env 0's T steps, env 1's, ...
    segment = flat_starts.long().cumsum(0) - 1
    start_index = flat_starts.nonzero().squeeze(1)
    position = torch.arange(flat_starts.numel(), device=dones.device) - start_index[segment]
    lengths = torch.bincount(segment, minlength=start_index.numel())
    return start_index % num_steps, start_index // num_steps, lengths, segment, position


class RecurrentRolloutStorage(RolloutStorage):
    def __init__(
        self,
        num_steps: int,
        num_envs: int,
        obs_shapes: Mapping,
        num_actions: int,
        actor_state_shape: tuple[int, int],
        critic_state_shape: tuple[int, int],
        sequence_length: int = 0,
        device: torch.device | str = "cpu",
    ):
        super().__init__(num_steps, num_envs, obs_shapes, num_actions, device)
        check_sequence_layout(self.num_steps, int(sequence_length))
        self.sequence_length = int(sequence_length)
        layers, size = actor_state_shape
        self.actor_states = torch.zeros(self.num_steps, layers, self.num_envs, size, device=device)
        layers, size = critic_state_shape
        self.critic_states = torch.zeros(self.num_steps, layers, self.num_envs, size, device=device)

    def add_states(self, actor_state: torch.Tensor, critic_state: torch.Tensor) -> None:
        """The states the step about to be added was computed from (call before `add`)."""
        self.actor_states[self.step].copy_(actor_state)
        self.critic_states[self.step].copy_(critic_state)

    def mini_batch(self, env_ids: torch.Tensor) -> SequenceMiniBatch:
        """The mini-batch of these envs as padded sequences (whole envs, time order kept)."""
        dones = self.dones[:, env_ids]
        starts_t, starts_env, lengths, segment, position = segment_layout(
            dones, self.sequence_length
        )
        num_segments, longest = lengths.numel(), int(lengths.max())
        n = env_ids.numel()
        # Env-major step order (matches segment/position): local env e, step t.
        local_env = torch.arange(n, device=self.device).repeat_interleave(self.num_steps)
        step = torch.arange(self.num_steps, device=self.device).repeat(n)
        masks = torch.zeros(longest, num_segments, dtype=torch.bool, device=self.device)
        masks[position, segment] = True
        # Rows of the flat tensors: the real steps in padded[mask] (time-major) order.
        order = torch.argsort(position * num_segments + segment)
        rows_t, rows_env = step[order], env_ids[local_env[order]]

        def pad(buf: torch.Tensor) -> torch.Tensor:
            out = buf.new_zeros(longest, num_segments, *buf.shape[2:])
            out[position, segment] = buf[step, env_ids[local_env]]
            return out

        seq_obs = _map_obs(self.obs, pad)
        first_env = env_ids[starts_env]
        sequence = SequenceBatch(
            obs=seq_obs,
            masks=masks,
            actor_state=self.actor_states[starts_t, :, first_env].transpose(0, 1),
            critic_state=self.critic_states[starts_t, :, first_env].transpose(0, 1),
        )
        return SequenceMiniBatch(
            obs=_map_obs(self.obs, lambda buf: buf[rows_t, rows_env]),
            actions=self.actions[rows_t, rows_env],
            old_log_probs=self.log_probs[rows_t, rows_env],
            advantages=self.advantages[rows_t, rows_env],
            returns=self.returns[rows_t, rows_env],
            old_values=self.values[rows_t, rows_env],
            env_ids=env_ids,
            sequence=sequence,
            steps=rows_t,
            envs=rows_env,
        )


def _map_obs(buffers: Mapping, fn) -> dict:
    return {
        name: _map_obs(buf, fn) if isinstance(buf, Mapping) else fn(buf)
        for name, buf in buffers.items()
    }


def recurrent_storage_for(actor, critic, cfg, env, device) -> RecurrentRolloutStorage:
    """The storage of a recurrent actor-critic; both halves must be recurrent."""
    if not getattr(critic, "is_recurrent", False):
        raise ValueError(
            "actor_critic.critic: a recurrent actor needs a recurrent critic "
            "(gear_sonic.trl.modules.recurrent_modules.RecurrentCritic)"
        )
    actor_core, critic_core = actor.backbone.core, critic.core
    return RecurrentRolloutStorage(
        cfg.num_steps_per_env, env.num_envs, env.observation_shapes, env.num_actions,
        (actor_core.num_layers, actor_core.state_size),
        (critic_core.num_layers, critic_core.state_size),
        cfg.sequence_length, device,
    )
