"""AMP discriminator: an MLP scoring (normalised) feature windows, its LSGAN + R1 loss and the
style reward read from its raw output.

Targets are LSGAN's: expert -> 1, policy -> 0. R1 penalises the gradient of D on expert samples
(gamma / 2 * E ||grad_x D||^2), which keeps D flat around the data and the game stable.
Spectral normalisation on the hidden layers bounds each layer's Lipschitz constant to ~1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class Discriminator(nn.Module):
    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int] = (1024, 512, 256),
        use_spectral_norm: bool = True,
        layer_norm: bool = False,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        width = int(input_dim)
        for hidden in hidden_dims:
            linear = nn.Linear(width, int(hidden))
            nn.init.orthogonal_(linear.weight, gain=math.sqrt(2.0))
            nn.init.zeros_(linear.bias)
            layers.append(spectral_norm(linear) if use_spectral_norm else linear)
            if layer_norm:
                layers.append(nn.LayerNorm(int(hidden)))
            layers.append(nn.ELU())
            width = int(hidden)
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)
        nn.init.orthogonal_(self.head.weight, gain=1.0)
        nn.init.zeros_(self.head.bias)
        self.input_dim = int(input_dim)

    def hidden_linears(self) -> list[nn.Linear]:
        return [m for m in self.trunk if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B,) raw logit."""
        return self.head(self.trunk(x)).squeeze(-1)


def lsgan_r1_loss(
    disc: nn.Module, expert: torch.Tensor, policy: torch.Tensor, r1_gamma: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """LSGAN (expert -> 1, policy -> 0) + gamma / 2 * R1 on the expert samples.

    -> (loss, {d_expert (B,), d_policy (B,), lsgan, r1}); r1 is E ||grad_x D(x_expert)||^2.
    """
    expert = expert.detach().requires_grad_(True)
    d_expert = disc(expert)
    d_policy = disc(policy.detach())
    lsgan = (d_expert - 1.0).square().mean() + d_policy.square().mean()
    (grad,) = torch.autograd.grad(d_expert.sum(), expert, create_graph=True)
    r1 = grad.square().sum(-1).mean()
    loss = lsgan + 0.5 * float(r1_gamma) * r1
    return loss, {"d_expert": d_expert, "d_policy": d_policy, "lsgan": lsgan, "r1": r1}


def style_reward(logits: torch.Tensor, kind: str = "clip") -> torch.Tensor:
    """clip(D, 0, 1) (matches the 0/1 targets), or the AMP paper's max(0, 1 - 0.25 (D - 1)^2)."""
    if kind == "clip":
        return logits.clamp(0.0, 1.0)
    if kind == "amp":
        return (1.0 - 0.25 * (logits - 1.0).square()).clamp_min(0.0)
    raise ValueError(f"amp.reward_type={kind!r}: use clip or amp")
