"""Which AMP features tell the policy's motion from the expert clips, in the units the
discriminator sees (normalised by the expert mean and floored std)?

A feature the clips hold still (expert std at its floor) that the policy moves, if only by its
exploration noise, sits many std from the clips; the discriminator can then tell the two apart by
that noise alone, and the style reward stops rewarding anything the policy can learn. This report
ranks the features of the newest frame of each window so the floors (`amp.norm_std_min`) can be
set for a new motion set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gear_sonic.envs.manager_env.mdp.amp_features import TERM_WIDTHS, AMPFeatureSpec


@dataclass(frozen=True)
class FeatureRow:
    name: str  # "<term>:<joint or axis>"
    expert_std: float  # before the floor, in the term's units
    norm_std: float  # the std that normalises it (after the floor)
    policy_abs_z: float  # mean |policy - expert mean| / norm_std
    separation: float  # |mean difference| / pooled std of the normalised values


def frame_feature_names(spec: AMPFeatureSpec, joint_names: Sequence[str]) -> list[str]:
    """One name per feature of a frame, in the order `frame_features` writes them."""
    axes = {"root_vel_dir": "xyz", "root_ang_vel": "xyz", "root_height": "z", "foot_contacts": "LR"}
    names = []
    for term in spec.terms:
        labels = list(joint_names) if TERM_WIDTHS[term] is None else list(axes[term])
        names += [f"{term}:{label}" for label in labels]
    return names


def feature_separation(
    policy: torch.Tensor,
    expert: torch.Tensor,
    norm_mean: torch.Tensor,
    norm_std: torch.Tensor,
    names: Sequence[str],
) -> list[FeatureRow]:
    """(M, k*F) policy and (E, k*F) expert windows -> one row per feature of the newest frame,
    farthest from the clips first (mean |z| of the policy: the expert's is ~0.8 by construction;
    a mean shift alone shows in `separation`). Normalised values are clamped to +-10 as the
    discriminator's are."""
    width = len(names)
    newest = slice(expert.shape[-1] - width, expert.shape[-1])
    mean, std = norm_mean[newest], norm_std[newest]
    z_policy = ((policy[:, newest] - mean) / std).clamp(-10.0, 10.0)
    z_expert = ((expert[:, newest] - mean) / std).clamp(-10.0, 10.0)
    pooled = (0.5 * (z_policy.var(0) + z_expert.var(0))).sqrt().clamp_min(1e-6)
    separation = (z_policy.mean(0) - z_expert.mean(0)).abs() / pooled
    raw_std = expert[:, newest].std(0)
    rows = [
        FeatureRow(
            names[i],
            float(raw_std[i]),
            float(std[i]),
            float(z_policy[:, i].abs().mean()),
            float(separation[i]),
        )
        for i in range(width)
    ]
    return sorted(rows, key=lambda row: row.policy_abs_z, reverse=True)
