"""Running mean / variance of an observation stream, used to normalise critic inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from gear_sonic.trl.modules.base_module import as_shape


class RunningMeanStd(nn.Module):
    """Per-channel running statistics, merged batch by batch (Chan et al.'s parallel Welford).

    The statistics are buffers, so they travel with `state_dict`. For several processes, pass an
    `all_reduce_fn` (a sum over processes, e.g. `accelerator.reduce(t, "sum")`) to `update`: the
    batch moments are summed before merging, so every process ends with the same statistics.
    """

    def __init__(self, shape: int | Sequence[int], clip: float = 5.0, epsilon: float = 1e-8):
        super().__init__()
        self.shape = as_shape(shape)
        self.clip = float(clip)
        self.epsilon = float(epsilon)
        self.register_buffer("mean", torch.zeros(self.shape))
        self.register_buffer("var", torch.ones(self.shape))
        # float64 so that billions of samples still add up exactly enough.
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(
        self, x: torch.Tensor, all_reduce_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        x = x.reshape(-1, *self.shape).double()
        # Moments of x - mean: near zero after warm-up, so E[d^2] - E[d]^2 does not cancel badly.
        shifted = x - self.mean.double()
        moments = torch.stack([shifted.sum(0), shifted.square().sum(0)])
        batch_count = torch.tensor(float(x.shape[0]), dtype=torch.float64, device=x.device)
        if all_reduce_fn is not None:
            moments = all_reduce_fn(moments)
            batch_count = all_reduce_fn(batch_count)
        if batch_count <= 0:
            return
        shift_mean = moments[0] / batch_count
        batch_var = (moments[1] / batch_count - shift_mean.square()).clamp_min(0.0)
        batch_mean = self.mean.double() + shift_mean

        total = self.count + batch_count
        delta = batch_mean - self.mean.double()
        new_mean = self.mean.double() + delta * batch_count / total
        m2 = self.var.double() * self.count + batch_var * batch_count
        m2 = m2 + delta.square() * self.count * batch_count / total
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        normalized = (x - self.mean) / torch.sqrt(self.var + self.epsilon)
        return normalized.clamp(-self.clip, self.clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalize(x)
