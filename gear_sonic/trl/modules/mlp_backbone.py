"""A plain MLP actor backbone built from the env's observation groups (locomotion presets).

`build_policy_and_value` hands every actor backbone `obs_shapes` and `num_actions`; this adapts
them to `BaseModule`, whose input terms are here whole concatenated groups (e.g. actor_obs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gear_sonic.trl.modules.base_module import BaseModule


def mlp_backbone(
    obs_shapes: Mapping,
    num_actions: int,
    input_groups: Sequence[str] = ("actor_obs",),
    hidden_dims: Sequence[int] = (512, 256, 128),
    activation: str = "elu",
) -> BaseModule:
    missing = [g for g in input_groups if g not in obs_shapes]
    if missing:
        raise KeyError(
            f"actor_critic.actor.backbone.input_groups: {missing} are not observation "
            f"groups of the env; available: {sorted(obs_shapes)}"
        )
    return BaseModule(list(input_groups), obs_shapes, num_actions, list(hidden_dims), activation)
