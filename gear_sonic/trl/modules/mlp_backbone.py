"""A plain MLP actor backbone built from the env's observation groups (locomotion presets).

`build_policy_and_value` hands every actor backbone `obs_shapes` and `num_actions`; this adapts
them to `BaseModule`, whose input terms are here whole concatenated groups (e.g. actor_obs).
With `normalize_input`, the joined input is normalised by running statistics (rsl_rl's actor
`obs_normalization`); like the critic's, they change only through `update_normalizer`, which the
trainer calls on the observations it trained on, and they travel with the checkpoint and into
the ONNX export. `epsilon` is added to the variance (rsl_rl's 1e-2): a channel that was nearly
constant in the first batches (a default joint angle, a zero command) must not blow up later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from gear_sonic.trl.modules.base_module import BaseModule
from gear_sonic.trl.modules.normalization import RunningMeanStd

ReduceFn = Callable[[torch.Tensor], torch.Tensor] | None


class MLPBackbone(BaseModule):
    """BaseModule over whole observation groups, with an optional input normaliser."""

    def __init__(self, input_groups, obs_shapes, num_actions, hidden_dims, activation,
                 normalize_input: bool = False, clip: float = 5.0, epsilon: float = 1e-2):
        super().__init__(list(input_groups), obs_shapes, num_actions, list(hidden_dims), activation)
        self.normalizer = (
            RunningMeanStd(self.input_dim, clip=clip, epsilon=epsilon) if normalize_input else None
        )

    def concat_terms(self, group_obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        joined = super().concat_terms(group_obs)
        return joined if self.normalizer is None else self.normalizer(joined)

    @torch.no_grad()
    def update_normalizer(self, obs: Mapping[str, torch.Tensor], all_reduce_fn: ReduceFn = None):
        """Merge these observations (the env's group dict, any leading batch dims) into the stats;
        `all_reduce_fn` sums the batch moments over processes (see RunningMeanStd.update)."""
        if self.normalizer is not None:
            self.normalizer.update(BaseModule.concat_terms(self, obs), all_reduce_fn)


def mlp_backbone(
    obs_shapes: Mapping,
    num_actions: int,
    input_groups: Sequence[str] = ("actor_obs",),
    hidden_dims: Sequence[int] = (512, 256, 128),
    activation: str = "elu",
    normalize_input: bool = False,
    clip: float = 5.0,
    epsilon: float = 1e-2,
) -> MLPBackbone:
    missing = [g for g in input_groups if g not in obs_shapes]
    if missing:
        raise KeyError(
            f"actor_critic.actor.backbone.input_groups: {missing} are not observation "
            f"groups of the env; available: {sorted(obs_shapes)}"
        )
    return MLPBackbone(input_groups, obs_shapes, num_actions, hidden_dims, activation,
                       normalize_input=normalize_input, clip=clip, epsilon=epsilon)
