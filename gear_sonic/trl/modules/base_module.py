"""Building blocks: an MLP, and a module that reads named observation terms.

`BaseModule` is the unit every encoder, decoder and plain policy is made of: it picks its input
terms out of an observation group (a dict of named tensors), concatenates them, runs an optional
RNN and an MLP, and optionally reshapes the output into frames. Term sizes come from the group's
shape dict, so no module ever hard-codes an offset into a flat vector.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}

RNN_TYPES: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM}


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        choices = sorted(ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r}; choose one of {choices}") from None


def as_shape(shape: int | Sequence[int]) -> tuple[int, ...]:
    """A term shape as a tuple of ints (configs may hand over ints, lists or ListConfigs)."""
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(d) for d in shape)


class MLP(nn.Sequential):
    """Linear layers with an activation after every hidden layer; the output layer is linear."""

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        output_dim: int,
        activation: str = "silu",
    ):
        dims = [int(input_dim), *(int(d) for d in hidden_dims)]
        layers: list[nn.Module] = []
        for in_dim, out_dim in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(in_dim, out_dim), make_activation(activation)]
        layers.append(nn.Linear(dims[-1], int(output_dim)))
        super().__init__(*layers)
        self.input_dim = dims[0]
        self.output_dim = int(output_dim)


class BaseModule(nn.Module):
    """Named terms -> (optional RNN) -> MLP -> flat output or (T_out, output_dim) frames.

    Temporal input (`num_input_temporal_dims=T`): every term is viewed as (T, D_i) and the terms
    are joined frame by frame, (T, sum D_i), before flattening, so one row stays one frame.
    Temporal output (`num_output_temporal_dims=T_out`): the output is (T_out, output_dim), i.e.
    `output_dim` is the size of one output frame.

    Recurrent (`rnn_type` "gru" / "lstm"): the RNN runs before the MLP and `forward` returns
    `(output, hidden)`. Input with one batch dim is a single step; with two, (seq, batch).
    """

    def __init__(
        self,
        input_terms: Sequence[str],
        obs_shapes_of_group: Mapping[str, Sequence[int]],
        output_dim: int,
        hidden_dims: Sequence[int],
        activation: str = "silu",
        num_input_temporal_dims: int | None = None,
        num_output_temporal_dims: int | None = None,
        rnn_type: str | None = None,
        rnn_hidden: int = 256,
    ):
        super().__init__()
        self.input_terms = list(input_terms)
        if not self.input_terms:
            raise ValueError("BaseModule needs at least one input term")
        missing = [t for t in self.input_terms if t not in obs_shapes_of_group]
        if missing:
            available = list(obs_shapes_of_group)
            raise KeyError(f"input terms {missing} not in the group; available: {available}")
        self.term_shapes = {t: as_shape(obs_shapes_of_group[t]) for t in self.input_terms}
        self.num_input_temporal_dims = num_input_temporal_dims
        self.num_output_temporal_dims = num_output_temporal_dims
        self.output_dim = int(output_dim)

        self.input_dim = sum(math.prod(s) for s in self.term_shapes.values())
        if num_input_temporal_dims is not None:
            frames = num_input_temporal_dims
            for term, shape in self.term_shapes.items():
                if math.prod(shape) % frames:
                    raise ValueError(f"term {term!r} {shape} does not split into {frames} frames")

        self.rnn: nn.RNNBase | None = None
        mlp_input_dim = self.input_dim
        if rnn_type is not None:
            if rnn_type not in RNN_TYPES:
                choices = sorted(RNN_TYPES)
                raise ValueError(f"unknown rnn_type {rnn_type!r}; choose one of {choices}")
            self.rnn = RNN_TYPES[rnn_type](self.input_dim, rnn_hidden)
            mlp_input_dim = rnn_hidden

        total_output = self.output_dim * (num_output_temporal_dims or 1)
        self.mlp = MLP(mlp_input_dim, hidden_dims, total_output, activation)

    @property
    def is_recurrent(self) -> bool:
        return self.rnn is not None

    def concat_terms(self, group_obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(*batch, input_dim): the input terms joined in the configured order."""
        parts = []
        for term, shape in self.term_shapes.items():
            x = group_obs[term]
            batch = x.shape[: x.dim() - len(shape)]
            # Explicit sizes (not -1) so an empty batch (an encoder with no active rows) reshapes too.
            size = math.prod(shape)
            if self.num_input_temporal_dims is None:
                parts.append(x.reshape(*batch, size))
            else:
                frames = self.num_input_temporal_dims
                parts.append(x.reshape(*batch, frames, size // frames))
        joined = torch.cat(parts, dim=-1)
        return joined if self.num_input_temporal_dims is None else joined.flatten(-2)

    def forward(self, group_obs: Mapping[str, torch.Tensor], hidden=None):
        features = self.concat_terms(group_obs)
        if self.rnn is not None:
            features, hidden = self._run_rnn(features, hidden)
        out = self.mlp(features)
        if self.num_output_temporal_dims is not None:
            out = out.reshape(*out.shape[:-1], self.num_output_temporal_dims, self.output_dim)
        return (out, hidden) if self.rnn is not None else out

    def _run_rnn(self, features: torch.Tensor, hidden):
        single_step = features.dim() == 2
        if single_step:
            features = features.unsqueeze(0)
        out, hidden = self.rnn(features, hidden)
        return (out.squeeze(0) if single_step else out), hidden
