"""Auxiliary losses that shape the token space (added to PPO as sum(coef * L)).

All latent losses compare pre-quantization latents of two encoders on the rows where both ran,
so the g1, teleop and smpl encoders learn to map the same motion to the same latent. Both sides
receive gradients. The reconstruction loss asks g1_kin to recover the G1 reference (every term the
g1 encoder reads: future joints and future anchor orientations) from the tokens, whichever
encoder produced them. A loss with no valid rows is an exact zero that still
belongs to the graph, so it can be summed and back-propagated without NaNs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

from gear_sonic.trl.modules.universal_token_modules import TokenOutput

LOSS_TYPES = ("mse", "l1", "huber", "cosine")


def latent_distance(a: torch.Tensor, b: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """(N,) distance between rows of a and b (any trailing shape), averaged per row."""
    a, b = a.flatten(1), b.flatten(1)
    if kind == "mse":
        return (a - b).square().mean(-1)
    if kind == "l1":
        return (a - b).abs().mean(-1)
    if kind == "huber":
        return F.huber_loss(a, b, reduction="none").mean(-1)
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(a, b, dim=-1)
    raise ValueError(f"unknown loss_type {kind!r}; choose one of {LOSS_TYPES}")


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over rows where mask is True; 0 (still in the graph) when there are none."""
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def _latent(out: TokenOutput, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if name not in out.latents:
        raise KeyError(f"aux loss needs the {name!r} encoder latent; have {sorted(out.latents)}")
    return out.latents[name], out.latent_masks[name]


def g1_recon_loss(out: TokenOutput, obs: Mapping, kind: str) -> torch.Tensor:
    """g1_kin(tokens) vs every reconstructed G1 reference term, joined per frame, over all rows."""
    if out.g1_recon is None:
        raise ValueError("g1_recon loss needs a g1_kin decoder and compute_aux=True")
    names = list(out.g1_recon)
    recon = torch.cat([out.g1_recon[t] for t in names], dim=-1)
    target = torch.cat([obs["tokenizer_obs"][t] for t in names], dim=-1)
    return masked_mean(latent_distance(recon, target, kind))


LossFn = Callable[[TokenOutput, Mapping, str], torch.Tensor]


def paired_latent_loss(first: str, second: str) -> LossFn:
    """z_first vs z_second on the rows where both encoders ran."""

    def loss(out: TokenOutput, obs: Mapping, kind: str) -> torch.Tensor:
        z_a, mask_a = _latent(out, first)
        z_b, mask_b = _latent(out, second)
        return masked_mean(latent_distance(z_a, z_b, kind), mask_a & mask_b)

    loss.__name__ = f"{first}_{second}_latent_loss"
    return loss


def reencoded_smpl_g1_latent_loss(out: TokenOutput, obs: Mapping, kind: str) -> torch.Tensor:
    """g1 encoder(g1_kin(smpl tokens)) vs z_g1 on the smpl rows: a cycle back to the g1 latent."""
    if out.reencoded_g1_latent is None:
        raise ValueError(
            "reencoded_smpl_g1_latent needs g1 and smpl encoders, g1_kin and compute_aux=True"
        )
    z_g1, _ = _latent(out, "g1")
    return masked_mean(latent_distance(out.reencoded_g1_latent, z_g1, kind), out.reencoded_mask)


AUX_LOSSES: dict[str, LossFn] = {
    "g1_recon": g1_recon_loss,
    "g1_smpl_latent": paired_latent_loss("g1", "smpl"),
    "g1_teleop_latent": paired_latent_loss("g1", "teleop"),
    "teleop_smpl_latent": paired_latent_loss("teleop", "smpl"),
    "reencoded_smpl_g1_latent": reencoded_smpl_g1_latent_loss,
}


class AuxLossSet:
    """The configured aux losses: `(total, losses) = aux(token_output, obs)`.

    terms: name -> {coef, loss_type}. `total` = sum(coef * L); `losses` holds each unweighted L.
    """

    def __init__(self, terms: Mapping[str, Mapping]):
        self.terms: dict[str, tuple[float, str]] = {}
        for name, spec in terms.items():
            if name not in AUX_LOSSES:
                raise ValueError(f"unknown aux loss {name!r}; choose from {sorted(AUX_LOSSES)}")
            unknown = set(spec) - {"coef", "loss_type"}
            if unknown:
                raise ValueError(f"aux loss {name!r}: unknown keys {sorted(unknown)}")
            loss_type = spec.get("loss_type", "mse")
            if loss_type not in LOSS_TYPES:
                raise ValueError(
                    f"aux loss {name!r}: unknown loss_type {loss_type!r}; choose from {LOSS_TYPES}"
                )
            self.terms[name] = (float(spec["coef"]), loss_type)

    def __call__(
        self, out: TokenOutput, obs: Mapping
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        losses = {name: AUX_LOSSES[name](out, obs, kind) for name, (_, kind) in self.terms.items()}
        total = out.action_mean.new_zeros(())
        for name, (coef, _) in self.terms.items():
            total = total + coef * losses[name]
        return total, losses
