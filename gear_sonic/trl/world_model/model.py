"""Encoder, latent dynamics, reward / done heads and decoder of the world model.

obs -> encoder -> z;  z, action -> dynamics -> z' (a residual step);  z' -> reward, done logit;
z -> decoder -> obs. Observations are normalised by running statistics before the encoder and
the decoder predicts normalised observations, so every obs dim weighs the same in the loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gear_sonic.trl.modules.base_module import MLP, make_activation
from gear_sonic.trl.modules.normalization import RunningMeanStd


class WorldModel(nn.Module):
    def __init__(
        self,
        obs_dim: int,
        num_actions: int,
        latent_dim: int = 64,
        hidden_dims: Sequence[int] = (128, 128),
        activation: str = "elu",
        encoder: nn.Module | None = None,
    ):
        """`encoder` (raw obs -> latent) replaces the model's own, e.g. the policy's encoder."""
        super().__init__()
        self.obs_dim, self.num_actions, self.latent_dim = int(obs_dim), int(num_actions), latent_dim
        self.normalizer = RunningMeanStd((self.obs_dim,), clip=10.0)
        self.shared_encoder = encoder is not None
        self.encoder = encoder or nn.Sequential(
            MLP(self.obs_dim, hidden_dims, latent_dim, activation), make_activation(activation)
        )
        self.dynamics = MLP(latent_dim + self.num_actions, hidden_dims, latent_dim, activation)
        self.reward_head = MLP(latent_dim + self.num_actions, hidden_dims, 1, activation)
        self.done_head = MLP(latent_dim + self.num_actions, hidden_dims, 1, activation)
        self.decoder = MLP(latent_dim, hidden_dims, self.obs_dim, activation)

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        # A shared (policy) encoder sees what the policy sees: raw observations.
        return self.encoder(obs if self.shared_encoder else self.normalizer(obs))

    def step(self, z: torch.Tensor, actions: torch.Tensor):
        """-> next latent, reward (B,), done logit (B,), all for the transition (z, action)."""
        za = torch.cat([z, actions], dim=-1)
        return (
            z + self.dynamics(za),
            self.reward_head(za).squeeze(-1),
            self.done_head(za).squeeze(-1),
        )

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised observation."""
        return self.decoder(z)
