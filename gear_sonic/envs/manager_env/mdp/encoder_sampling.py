"""Which encoders are active in an episode (REFERENCE section 4).

One encoder is drawn per episode from the normalised sample probabilities, with smpl excluded
for clips that carry no SMPL keypoints. When smpl is drawn, g1 is switched on too, and teleop
with probability `teleop_prob_when_smpl`, so the aux losses always have paired latents; the
smpl token then drives the action (the policy applies the priority rule).
"""

from __future__ import annotations

import torch


def sample_encoder_masks(
    probs: torch.Tensor,
    has_smpl: torch.Tensor,
    smpl_column: int | None,
    g1_column: int | None,
    teleop_column: int | None,
    teleop_prob_when_smpl: float,
) -> torch.Tensor:
    """Multi-hot (num_envs, num_encoders) float mask, one row per env in `has_smpl`."""
    num = has_smpl.numel()
    weights = probs.clamp_min(0.0).expand(num, -1).clone()
    if smpl_column is not None:
        weights[~has_smpl, smpl_column] = 0.0
    # An env whose every allowed weight is zero falls back to the first encoder.
    empty = weights.sum(-1) <= 0
    weights[empty, 0] = 1.0
    chosen = torch.multinomial(weights, 1).squeeze(-1)
    mask = torch.nn.functional.one_hot(chosen, probs.numel()).float()
    if smpl_column is not None:
        smpl_rows = chosen == smpl_column
        if g1_column is not None:
            mask[smpl_rows, g1_column] = 1.0
        if teleop_column is not None:
            coin = torch.rand(num, device=has_smpl.device) < teleop_prob_when_smpl
            mask[smpl_rows & coin, teleop_column] = 1.0
    return mask
