"""Recurrent (GRU / LSTM) actor backbone and critic for recurrent PPO.

The recurrent state is one tensor (layers, N, state_size): an LSTM's (h, c) are joined on the
last dim, so storage, checkpoints of a rollout and the ONNX export handle one tensor whatever the
cell. Each module keeps the state of the running rollout (`state`, not a parameter) and is told
where episodes ended (`reset(dones)`). The PPO update instead hands in a `SequenceBatch`: padded
sequences (time, segments, ...) that start from the stored state; the outputs are the valid
(masked) steps in time-major order, the row order of the mini-batch's other tensors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from gear_sonic.trl.modules.actor_critic_modules import Critic
from gear_sonic.trl.modules.base_module import MLP, as_shape, make_activation

RNN_CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


@dataclass
class SequenceBatch:
    """Whole (possibly truncated) trajectories of one mini-batch, padded to a common length."""

    obs: dict  # group -> (L, S, *shape), zeros after a segment's end
    masks: torch.Tensor  # (L, S) bool, True on real steps
    actor_state: torch.Tensor  # (layers, S, state_size) at each segment's first step
    critic_state: torch.Tensor  # (layers, S, state_size)


def is_recurrent(module: nn.Module) -> bool:
    """True for a recurrent critic and for an Actor whose backbone is recurrent."""
    inner = getattr(module, "backbone", module)
    return bool(getattr(inner, "is_recurrent", False)) and hasattr(inner, "reset")


def reset_memory(module: nn.Module, dones: torch.Tensor | None = None) -> None:
    """Zero a recurrent actor's or critic's state where `dones` (all envs when None); no-op for
    feed-forward modules, so evaluation loops call it for any policy."""
    if is_recurrent(module):
        getattr(module, "backbone", module).reset(dones)


class RecurrentCore(nn.Module):
    """A GRU or LSTM whose state is one packed tensor (layers, N, state_size)."""

    def __init__(self, input_dim: int, hidden_size: int, cell: str = "lstm", num_layers: int = 1):
        super().__init__()
        if cell not in RNN_CELLS:
            raise ValueError(f"unknown rnn cell {cell!r}; choose one of {sorted(RNN_CELLS)}")
        self.cell = cell
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.rnn = RNN_CELLS[cell](int(input_dim), self.hidden_size, self.num_layers)
        self.state_size = self.hidden_size * (2 if cell == "lstm" else 1)

    def zero_state(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(self.num_layers, batch, self.state_size, device=device)

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (L, B, D), state (layers, B, state_size) -> out (L, B, H), next state."""
        if self.cell == "lstm":
            h, c = state.split(self.hidden_size, dim=-1)
            out, (h, c) = self.rnn(x, (h.contiguous(), c.contiguous()))
            return out, torch.cat([h, c], dim=-1)
        out, h = self.rnn(x, state.contiguous())
        return out, h


class _RolloutState(nn.Module):
    """The state of the running rollout, kept on the module between steps."""

    is_recurrent = True

    def _init_rollout_state(self) -> None:
        self.state: torch.Tensor | None = None  # (layers, N, state_size); built on first use

    def current_state(self, batch: int, device) -> torch.Tensor:
        if self.state is None or self.state.shape[1] != batch or self.state.device != device:
            self.state = self.core.zero_state(batch, device)
        return self.state

    def reset(self, dones: torch.Tensor | None = None) -> None:
        """Zero the state of the envs whose episode just ended (all envs when dones is None)."""
        if self.state is None:
            return
        if dones is None:
            self.state = torch.zeros_like(self.state)
        else:
            keep = (~dones.reshape(1, -1, 1).bool()).to(self.state.dtype)
            self.state = self.state * keep

    def _run(self, x: torch.Tensor, sequence_state, masks, advance: bool) -> torch.Tensor:
        """x (N, D) one rollout step, or (L, S, D) padded sequences -> features."""
        if masks is not None:
            out, _ = self.core(x, sequence_state)
            return out[masks]  # (valid steps, H), time-major
        state = self.current_state(x.shape[0], x.device)
        out, next_state = self.core(x.unsqueeze(0), state)
        if advance:
            self.state = next_state.detach()
        return out.squeeze(0)


def _group_input(obs: Mapping, groups: Sequence[str]) -> torch.Tensor:
    parts = []
    for group in groups:
        x = obs[group]
        parts.append(x.reshape(*x.shape[: x.dim() - 1], -1) if x.dim() else x)
    return torch.cat(parts, dim=-1)


class RecurrentBackbone(_RolloutState):
    """obs groups -> [encoder MLP] -> GRU/LSTM -> MLP -> action mean (an Actor backbone).

    `encoder_dims` adds an MLP before the RNN whose last width is the latent size; a world model
    may share it (`world_model.share_encoder`)."""

    def __init__(
        self,
        obs_shapes: Mapping,
        num_actions: int,
        input_groups: Sequence[str] = ("actor_obs",),
        rnn_type: str = "lstm",
        rnn_hidden: int = 128,
        rnn_layers: int = 1,
        encoder_dims: Sequence[int] = (),
        hidden_dims: Sequence[int] = (128,),
        activation: str = "elu",
    ):
        super().__init__()
        missing = [g for g in input_groups if g not in obs_shapes]
        if missing:
            raise KeyError(
                f"actor_critic.actor.backbone.input_groups: {missing} are not observation "
                f"groups of the env; available: {sorted(obs_shapes)}"
            )
        self.input_groups = list(input_groups)
        self.input_shapes = {g: tuple(as_shape(obs_shapes[g])) for g in self.input_groups}
        self.input_dim = sum(math.prod(shape) for shape in self.input_shapes.values())
        self.num_actions = int(num_actions)
        self.encoder: nn.Module | None = None
        rnn_input = self.input_dim
        if encoder_dims:
            dims = [int(d) for d in encoder_dims]
            self.encoder = nn.Sequential(
                MLP(self.input_dim, dims[:-1], dims[-1], activation), make_activation(activation)
            )
            self.latent_dim = rnn_input = dims[-1]
        self.core = RecurrentCore(rnn_input, rnn_hidden, rnn_type, rnn_layers)
        self.head = MLP(rnn_hidden, hidden_dims, num_actions, activation)
        self._init_rollout_state()

    def forward(self, obs: Mapping, sequence: SequenceBatch | None = None, advance: bool = True):
        source = obs if sequence is None else sequence.obs
        x = _group_input(source, self.input_groups)
        if self.encoder is not None:
            x = self.encoder(x)
        masks = None if sequence is None else sequence.masks
        state = None if sequence is None else sequence.actor_state
        return self.head(self._run(x, state, masks, advance))

    def step(self, obs_flat: torch.Tensor, state: torch.Tensor):
        """Stateless single step for export: (N, input_dim), state -> mean, next state."""
        x = obs_flat if self.encoder is None else self.encoder(obs_flat)
        out, next_state = self.core(x.unsqueeze(0), state)
        return self.head(out.squeeze(0)), next_state


def recurrent_backbone(obs_shapes: Mapping, num_actions: int, **kwargs) -> RecurrentBackbone:
    return RecurrentBackbone(obs_shapes, num_actions, **kwargs)


class RecurrentCritic(_RolloutState, Critic):
    """Value of (normalised obs group -> GRU/LSTM -> MLP); the normaliser is the Critic's."""

    def __init__(
        self,
        obs_shapes: Mapping,
        input_group: str = "critic_obs",
        rnn_type: str = "lstm",
        rnn_hidden: int = 128,
        rnn_layers: int = 1,
        hidden_dims: Sequence[int] = (128,),
        activation: str = "elu",
        normalize: bool = True,
        clip: float = 5.0,
    ):
        Critic.__init__(self, obs_shapes, input_group, hidden_dims, activation, normalize, clip)
        input_dim = math.prod(as_shape(obs_shapes[input_group]))
        self.core = RecurrentCore(input_dim, rnn_hidden, rnn_type, rnn_layers)
        self.mlp = MLP(rnn_hidden, hidden_dims, 1, activation)
        self._init_rollout_state()

    def forward(self, obs: Mapping, sequence: SequenceBatch | None = None, advance: bool = True):
        """(N, 1) values of one rollout step, or (valid steps, 1) over a SequenceBatch."""
        x = (obs if sequence is None else sequence.obs)[self.input_group]
        if self.normalizer is not None:
            x = self.normalizer(x)
        x = x.reshape(*x.shape[: 2 if sequence is not None else 1], -1)
        masks = None if sequence is None else sequence.masks
        state = None if sequence is None else sequence.critic_state
        return self.mlp(self._run(x, state, masks, advance))
