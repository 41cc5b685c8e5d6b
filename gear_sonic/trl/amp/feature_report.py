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
    z_policy: torch.Tensor,
    z_expert: torch.Tensor,
    expert_std: torch.Tensor,
    norm_std: torch.Tensor,
    names: Sequence[str],
) -> list[FeatureRow]:
    """Normalised (M, k*F) policy and (E, k*F) expert windows (as the discriminator reads them),
    the expert's raw and floored std (k*F,) -> one row per feature of the newest frame, farthest
    from the clips first (the policy's mean |z|: the expert's is ~0.8 by construction; a shift
    of the mean alone shows in `separation`)."""
    width = len(names)
    newest = slice(z_expert.shape[-1] - width, z_expert.shape[-1])
    z_policy, z_expert = z_policy[:, newest], z_expert[:, newest]
    pooled = (0.5 * (z_policy.var(0) + z_expert.var(0))).sqrt().clamp_min(1e-6)
    separation = (z_policy.mean(0) - z_expert.mean(0)).abs() / pooled
    rows = [
        FeatureRow(
            names[i],
            float(expert_std[newest][i]),
            float(norm_std[newest][i]),
            float(z_policy[:, i].abs().mean()),
            float(separation[i]),
        )
        for i in range(width)
    ]
    return sorted(rows, key=lambda row: row.policy_abs_z, reverse=True)
