"""Gaussian actor around any backbone, and an MLP critic with input normalisation."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from gear_sonic.trl.modules.base_module import MLP, as_shape
from gear_sonic.trl.modules.normalization import RunningMeanStd
from gear_sonic.trl.modules.universal_token_modules import TokenOutput, UniversalTokenModule


_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _batch_size(obs: Mapping) -> int:
    for value in obs.values():
        if isinstance(value, Mapping):
            return _batch_size(value)
        return value.shape[0]
    raise ValueError("empty observation dict")


def _action_head(backbone: nn.Module) -> nn.Linear:
    """The last linear layer on the action path (g1_dyn for the universal token module)."""
    source = backbone.decoders["g1_dyn"] if isinstance(backbone, UniversalTokenModule) else backbone
    linears = [m for m in source.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("action_head_gain: the actor backbone has no linear layer to scale")
    return linears[-1]


class Actor(nn.Module):
    """Normal(backbone(obs), std) with a learned, state-independent std per action.

    The backbone maps the observation dict to the action mean: a `UniversalTokenModule`
    (returns a TokenOutput, whose latents feed the aux losses) or any module returning a
    tensor, e.g. `BaseModule(["actor_obs"], obs_shapes, num_actions, ...)`. Extra keyword
    arguments (residual, external_tokens) are handed to the backbone.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_actions: int,
        init_std: float = 0.05,
        std_min: float = 0.001,
        std_max: float = 0.5,
        action_head_gain: float | None = None,
    ):
        super().__init__()
        if not 0.0 < std_min <= init_std <= std_max:
            raise ValueError(
                f"need 0 < std_min <= init_std <= std_max, got {std_min}, {init_std}, {std_max}"
            )
        self.backbone = backbone
        self.num_actions = int(num_actions)
        self.std_min = float(std_min)
        self.std_max = float(std_max)
        self.std = nn.Parameter(torch.full((self.num_actions,), float(init_std)))
        if action_head_gain is not None:
            # A near-zero initial mean: with reference-relative actions the fresh policy then
            # replays the reference instead of adding random offsets to it.
            head = _action_head(backbone)
            with torch.no_grad():
                head.weight.mul_(float(action_head_gain))
                head.bias.zero_()

    @property
    def action_std(self) -> torch.Tensor:
        """(num_actions,) the std actually used: the parameter clamped to [std_min, std_max]."""
        return self.std.clamp(self.std_min, self.std_max)

    def _mean_and_aux(self, obs, need_aux: bool, **backbone_kwargs):
        if isinstance(self.backbone, UniversalTokenModule):
            backbone_kwargs.setdefault("compute_aux", need_aux)
        out = self.backbone(obs, **backbone_kwargs)
        if isinstance(out, TokenOutput):
            return out.action_mean, out
        return out, None

    # The Gaussian in closed form: torch.distributions.Normal validates its arguments with
    # `.all()` checks, a host sync per call on a GPU, in every rollout step and mini-batch.
    def _log_prob(self, mean: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        std = self.action_std
        z = (actions - mean) / std
        return (-0.5 * z.square() - std.log() - _HALF_LOG_2PI).sum(-1)

    def _entropy_per_env(self) -> torch.Tensor:
        return (0.5 + _HALF_LOG_2PI + self.action_std.log()).sum()

    def act(self, obs, **backbone_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled actions (N, A) and their log-probabilities (N,)."""
        mean, _ = self._mean_and_aux(obs, need_aux=False, **backbone_kwargs)
        actions = mean + self.action_std * torch.randn_like(mean)
        return actions, self._log_prob(mean, actions)

    def act_inference(self, obs, **backbone_kwargs) -> torch.Tensor:
        """The deterministic action: the mean (N, A)."""
        mean, _ = self._mean_and_aux(obs, need_aux=False, **backbone_kwargs)
        return mean

    forward = act_inference

    def log_prob(self, obs, actions: torch.Tensor, **backbone_kwargs) -> torch.Tensor:
        mean, _ = self._mean_and_aux(obs, need_aux=False, **backbone_kwargs)
        return self._log_prob(mean, actions)

    def entropy(self, obs) -> torch.Tensor:
        """(N,) entropy; the std does not depend on the state, so no forward pass is needed."""
        return self._entropy_per_env().expand(_batch_size(obs))

    def evaluate(self, obs, actions: torch.Tensor, **backbone_kwargs):
        """One forward pass for the PPO update.

        -> log_prob (N,), entropy (N,), mean (N, A), std (N, A), aux_outputs (TokenOutput or None).
        """
        mean, aux = self._mean_and_aux(obs, need_aux=True, **backbone_kwargs)
        entropy = self._entropy_per_env().expand(mean.shape[0])
        return self._log_prob(mean, actions), entropy, mean, self.action_std.expand_as(mean), aux


class Critic(nn.Module):
    """Value MLP on one concatenated observation group, optionally normalised by running stats.

    The normaliser only changes through `update_normalizer`, which the trainer calls on the
    observations it trains on, so evaluation never shifts the statistics.
    """

    def __init__(
        self,
        obs_shapes: Mapping,
        input_group: str = "critic_obs",
        hidden_dims: Sequence[int] = (512, 256, 128),
        activation: str = "silu",
        normalize: bool = True,
        clip: float = 5.0,
    ):
        super().__init__()
        self.input_group = input_group
        input_shape = as_shape(obs_shapes[input_group])
        self.normalizer = RunningMeanStd(input_shape, clip=clip) if normalize else None
        self.mlp = MLP(math.prod(input_shape), hidden_dims, 1, activation)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(N, 1) values."""
        x = obs[self.input_group]
        if self.normalizer is not None:
            x = self.normalizer(x)
        return self.mlp(x.flatten(1))

    def update_normalizer(
        self,
        obs: Mapping[str, torch.Tensor],
        all_reduce_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if self.normalizer is not None:
            self.normalizer.update(obs[self.input_group], all_reduce_fn)
