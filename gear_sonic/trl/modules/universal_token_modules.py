"""The universal token policy: per-modality encoders -> FSQ tokens -> action decoder.

Each encoder (g1 robot joints, teleop VR 3-point, smpl human keypoints) turns its own reference
into `num_tokens` latents of `token_dim = len(fsq_levels)`. The env's multi-hot `encoder_index`
says which encoders are active per env; an encoder runs only on its active rows. The active
encoder with the highest priority (smpl > teleop > g1) provides the latent that is quantized by
FSQ and, with the proprioception, decoded into actions by `g1_dyn`. During training `g1_kin`
decodes the tokens back into the g1 encoder's inputs (as in SONIC: the future joint reference
and the future anchor orientations), and the g1 encoder re-encodes that reconstruction, which
gives the auxiliary losses their inputs (see `trl/losses/token_losses.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from vector_quantize_pytorch import FSQ

from gear_sonic.trl.modules.base_module import BaseModule, as_shape

# What g1_kin reconstructs when there is no g1 encoder; otherwise it reconstructs every input of
# the g1 encoder, so the re-encoding sees only reconstructed values.
G1_REFERENCE_TERM = "command_multi_future_nonflat"
RESIDUAL_MODES = ("post_quantization", "pre_quantization", "pre_quantization_replace")
ENCODER_KEYS = {"input_terms", "hidden_dims", "activation", "num_input_temporal_dims"}
DECODER_KEYS = {"input_terms", "hidden_dims", "activation"}


@dataclass
class TokenOutput:
    """What one forward pass produces; the aux losses read the fields after `action_mean`.

    `latents[name]` is (N, num_tokens, token_dim), computed only on rows where
    `latent_masks[name]` is True and zero elsewhere. `codes` are the FSQ level indices
    (0 .. L-1 per dim) of the quantized tokens. Fields that were not computed are None.
    """

    action_mean: torch.Tensor
    tokens: torch.Tensor
    latents: dict[str, torch.Tensor]
    latent_masks: dict[str, torch.Tensor]
    codes: torch.Tensor | None
    g1_recon: dict[str, torch.Tensor] | None  # tokenizer term -> (N, frames, term dim)
    reencoded_g1_latent: torch.Tensor | None
    reencoded_mask: torch.Tensor | None


def fsq_usage_metrics(codes: torch.Tensor, levels: Sequence[int]) -> dict[str, float]:
    """Per-dimension code usage of FSQ level indices (..., token_dim), averaged over dimensions.

    With 32^32 codes a flat "codebook %" is meaningless; per dimension we report the fraction
    of levels that occur and the perplexity (exp of the entropy) of the level histogram.
    """
    levels_t = torch.as_tensor(list(levels), device=codes.device)
    flat = codes.reshape(-1, levels_t.numel()).long()
    if flat.shape[0] == 0:
        return {}
    counts = torch.zeros(levels_t.numel(), int(levels_t.max()), device=codes.device)
    counts.scatter_add_(1, flat.T, torch.ones_like(flat.T, dtype=counts.dtype))
    probs = counts / flat.shape[0]
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
    levels_used = (counts > 0).sum(-1).float()
    usage = levels_used / levels_t
    return {
        "policy/fsq_mean_dim_perplexity": entropy.exp().mean().item(),
        "policy/fsq_mean_dim_usage": usage.mean().item(),
        "policy/fsq_min_dim_usage": usage.min().item(),
        "policy/fsq_mean_dim_levels_used": levels_used.mean().item(),
    }


def _check_keys(kind: str, name: str, spec: Mapping, allowed: set[str]) -> dict:
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(
            f"{kind} {name!r}: unknown keys {sorted(unknown)}; allowed {sorted(allowed)}"
        )
    return dict(spec)


def _per_frame_terms(
    terms: Sequence[str], tokenizer_shapes: Mapping[str, tuple[int, ...]]
) -> tuple[dict[str, int], int]:
    """{term: per-frame width} and the shared frame count of terms that g1_kin reconstructs."""
    shapes = {t: tokenizer_shapes.get(t) for t in terms}
    bad = {t: s for t, s in shapes.items() if s is None or len(s) != 2}
    if bad or len({s[0] for s in shapes.values()}) != 1:
        raise ValueError(
            f"g1_kin reconstructs the g1 encoder's inputs {list(terms)}, which must all be "
            f"tokenizer_obs terms of shape (frames, dim) with the same frames; got {shapes}"
        )
    return {t: s[1] for t, s in shapes.items()}, next(iter(shapes.values()))[0]


class UniversalTokenModule(nn.Module):
    """Encoders + FSQ + decoders. `forward(obs) -> TokenOutput`.

    encoders: name -> {input_terms, hidden_dims, activation[, num_input_temporal_dims]}, inputs
        read from `obs["tokenizer_obs"]`.
    decoders: {"g1_dyn": {...}, "g1_kin": {...}} with {input_terms, hidden_dims, activation};
        input terms may name "tokens" (num_tokens x token_dim), a top-level group ("actor_obs")
        or a tokenizer term. g1_dyn outputs the action mean; g1_kin (optional) reconstructs the
        g1 encoder's input terms (per-frame terms with a shared frame count).
    encoder_names: the column order of `encoder_index`.
    priority: which active encoder drives the action, highest first; rows with no active
        encoder fall back to the lowest-priority one.
    freeze: names whose parameters stop training: "encoders", "decoders", "quantizer", or one
        encoder / decoder name.
    """

    def __init__(
        self,
        obs_shapes: Mapping,
        encoders: Mapping[str, Mapping],
        decoders: Mapping[str, Mapping],
        fsq_levels: Sequence[int],
        num_tokens: int,
        num_actions: int,
        encoder_names: Sequence[str] = ("g1", "teleop", "smpl"),
        priority: Sequence[str] = ("smpl", "teleop", "g1"),
        residual_mode: str = "post_quantization",
        freeze: Sequence[str] = (),
    ):
        super().__init__()
        if residual_mode not in RESIDUAL_MODES:
            raise ValueError(
                f"unknown residual_mode {residual_mode!r}; choose one of {RESIDUAL_MODES}"
            )
        if "g1_dyn" not in decoders:
            raise ValueError("decoders must contain 'g1_dyn' (the action decoder)")
        tokenizer_shapes = {k: as_shape(v) for k, v in obs_shapes["tokenizer_obs"].items()}
        self.encoder_names = list(encoder_names)
        if tokenizer_shapes["encoder_index"] != (len(self.encoder_names),):
            raise ValueError(
                f"encoder_index has shape {tokenizer_shapes['encoder_index']}, "
                f"but encoder_names lists {self.encoder_names}"
            )
        unknown = [n for n in encoders if n not in self.encoder_names or n not in priority]
        if unknown:
            raise ValueError(f"encoders {unknown} missing from encoder_names or priority")
        self.priority = [n for n in priority if n in encoders]
        self.residual_mode = residual_mode
        self.num_tokens = int(num_tokens)
        self.fsq_levels = [int(level) for level in fsq_levels]
        self.token_dim = len(self.fsq_levels)

        self.encoders = nn.ModuleDict()
        for name, spec in encoders.items():
            self.encoders[name] = BaseModule(
                obs_shapes_of_group=tokenizer_shapes,
                output_dim=self.token_dim,
                num_output_temporal_dims=self.num_tokens,
                **_check_keys("encoder", name, spec, ENCODER_KEYS),
            )

        self.quantizer = FSQ(levels=self.fsq_levels, return_indices=False)
        # Level index = token * (L // 2) + L // 2 for FSQ's (non-symmetric) grid.
        half_width = torch.tensor(self.fsq_levels) // 2
        self.register_buffer("_half_width", half_width, persistent=False)

        decoder_shapes = {"tokens": (self.num_tokens, self.token_dim), **tokenizer_shapes}
        # Concatenated top-level groups (e.g. actor_obs) are decoder inputs too.
        for group, shape in obs_shapes.items():
            if not isinstance(shape, Mapping):
                decoder_shapes[group] = as_shape(shape)
        self.decoders = nn.ModuleDict()
        self.decoders["g1_dyn"] = BaseModule(
            obs_shapes_of_group=decoder_shapes,
            output_dim=num_actions,
            **_check_keys("decoder", "g1_dyn", decoders["g1_dyn"], DECODER_KEYS),
        )
        self.recon_terms: dict[str, int] = {}  # term -> per-frame width of g1_kin's output
        if "g1_kin" in decoders:
            g1_inputs = encoders["g1"]["input_terms"] if "g1" in encoders else [G1_REFERENCE_TERM]
            self.recon_terms, frames = _per_frame_terms(g1_inputs, tokenizer_shapes)
            self.decoders["g1_kin"] = BaseModule(
                obs_shapes_of_group=decoder_shapes,
                output_dim=sum(self.recon_terms.values()),
                num_output_temporal_dims=frames,
                **_check_keys("decoder", "g1_kin", decoders["g1_kin"], DECODER_KEYS),
            )
        extra = set(decoders) - {"g1_dyn", "g1_kin"}
        if extra:
            raise ValueError(
                f"unknown decoders {sorted(extra)}; expected g1_dyn and optionally g1_kin"
            )
        self.freeze_modules(freeze)

    # ---------------------------------------------------------------- configuration
    def freeze_modules(self, names: Sequence[str]) -> None:
        for name in names:
            self._module_by_name(name).requires_grad_(False)

    def _module_by_name(self, name: str) -> nn.Module:
        groups = {"encoders": self.encoders, "decoders": self.decoders, "quantizer": self.quantizer}
        if name in groups:
            return groups[name]
        if name in self.encoders:
            return self.encoders[name]
        if name in self.decoders:
            return self.decoders[name]
        options = [*groups, *self.encoders, *self.decoders]
        raise ValueError(f"cannot freeze {name!r}; choose from {options}")

    def usage_metrics(self, codes: torch.Tensor) -> dict[str, float]:
        return fsq_usage_metrics(codes, self.fsq_levels)

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        obs: Mapping[str, torch.Tensor | Mapping[str, torch.Tensor]],
        residual: torch.Tensor | None = None,
        external_tokens: torch.Tensor | None = None,
        compute_aux: bool = True,
    ) -> TokenOutput:
        """Action mean plus the training-time latents.

        residual: (N, num_tokens, token_dim) or flat, applied per `residual_mode`.
        external_tokens: tokens that bypass the encoders and FSQ and drive g1_dyn directly.
        compute_aux: False skips g1_kin and the re-encoding (rollouts, deployment).
        """
        tokenizer_obs = obs.get("tokenizer_obs", {})
        latents: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor] = {}
        codes = None
        if external_tokens is not None:
            tokens = external_tokens.reshape(-1, self.num_tokens, self.token_dim)
        else:
            masks = self.encoder_masks(tokenizer_obs["encoder_index"])
            latents = {
                name: self.encode_rows(name, tokenizer_obs, masks[name]) for name in self.priority
            }
            driving = self.driving_latent(latents, masks)
            tokens, codes = self.quantize_with_residual(driving, residual)

        decoder_obs = {"tokens": tokens, **tokenizer_obs}
        decoder_obs.update({k: v for k, v in obs.items() if isinstance(v, torch.Tensor)})
        action_mean = self.decoders["g1_dyn"](decoder_obs)

        g1_recon = reencoded = reencoded_mask = None
        if compute_aux and "g1_kin" in self.decoders:
            g1_recon = self.reconstruct_g1(decoder_obs)
            if "g1" in latents and "smpl" in latents:
                reencoded_mask = masks["smpl"] & masks["g1"]
                reencoded = self.reencode_g1(g1_recon, tokenizer_obs, reencoded_mask)
        return TokenOutput(
            action_mean=action_mean,
            tokens=tokens,
            latents=latents,
            latent_masks=masks,
            codes=codes,
            g1_recon=g1_recon,
            reencoded_g1_latent=reencoded,
            reencoded_mask=reencoded_mask,
        )

    def encoder_masks(self, encoder_index: torch.Tensor) -> dict[str, torch.Tensor]:
        """name -> (N,) bool rows where that encoder runs."""
        active = encoder_index > 0.5
        masks = {name: active[:, self.encoder_names.index(name)] for name in self.priority}
        none_active = ~torch.stack(list(masks.values()), dim=-1).any(-1)
        fallback = self.priority[-1]
        masks[fallback] = masks[fallback] | none_active
        return masks

    def encode_rows(
        self, name: str, tokenizer_obs: Mapping[str, torch.Tensor], mask: torch.Tensor
    ) -> torch.Tensor:
        """Run one encoder on the rows of `mask` only; zeros elsewhere."""
        encoder = self.encoders[name]
        rows = mask.nonzero(as_tuple=True)[0]
        # Also runs on zero rows, so every parameter stays in the graph (DDP-friendly).
        latent = encoder({t: tokenizer_obs[t].index_select(0, rows) for t in encoder.input_terms})
        return self._scatter_rows(latent, rows, mask.shape[0])

    def driving_latent(
        self, latents: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """Per row, the latent of the highest-priority active encoder."""
        driving = None
        for name in reversed(self.priority):  # lowest first, so higher priorities overwrite
            chosen = masks[name][:, None, None]
            latent = latents[name]
            driving = latent if driving is None else torch.where(chosen, latent, driving)
        return driving

    def quantize(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """FSQ tokens (straight-through gradients) and their level indices."""
        tokens, _ = self.quantizer(latent)
        codes = torch.round(tokens.detach() * self._half_width + self._half_width).long()
        return tokens, codes

    def quantize_with_residual(
        self, latent: torch.Tensor, residual: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if residual is None:
            return self.quantize(latent)
        residual = residual.reshape_as(latent)
        if self.residual_mode == "pre_quantization":
            return self.quantize(latent + residual)
        if self.residual_mode == "pre_quantization_replace":
            return self.quantize(residual)
        tokens, codes = self.quantize(latent)
        return tokens + residual, codes

    def reconstruct_g1(self, decoder_obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """g1_kin's output split into its terms: name -> (N, frames, term dim)."""
        frames = self.decoders["g1_kin"](decoder_obs)
        parts = frames.split(list(self.recon_terms.values()), dim=-1)
        return dict(zip(self.recon_terms, parts))

    def reencode_g1(
        self,
        g1_recon: Mapping[str, torch.Tensor],
        tokenizer_obs: Mapping[str, torch.Tensor],
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """The g1 encoder applied to g1_kin's reconstruction (all of its inputs), on `mask` rows."""
        encoder = self.encoders["g1"]
        rows = mask.nonzero(as_tuple=True)[0]
        inputs = {t: g1_recon[t].index_select(0, rows) for t in encoder.input_terms}
        return self._scatter_rows(encoder(inputs), rows, mask.shape[0])

    @staticmethod
    def _scatter_rows(values: torch.Tensor, rows: torch.Tensor, num_rows: int) -> torch.Tensor:
        full = values.new_zeros(num_rows, *values.shape[1:])
        return full.index_copy(0, rows, values)
