"""gymnasium spaces of an mjlab env, read from its observation groups and action terms.

A concatenated group is one Box; a group kept as named terms (the tokenizer) is a Dict of Boxes,
one per term. Observations are unbounded; actions are bounded by `action_bound` when given.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces


def observation_space(manager) -> spaces.Dict:
    """Single-env Dict space from an mjlab ObservationManager."""
    groups = {}
    for group, names in manager.active_terms.items():
        if manager.group_obs_concatenate[group]:
            groups[group] = _box(tuple(manager.group_obs_dim[group]))
        else:
            dims = manager.group_obs_term_dim[group]
            groups[group] = spaces.Dict({n: _box(tuple(d)) for n, d in zip(names, dims)})
    return spaces.Dict(groups)


def action_space(num_actions: int, action_bound: float | None) -> spaces.Box:
    bound = math.inf if action_bound is None else float(action_bound)
    return spaces.Box(-bound, bound, shape=(num_actions,), dtype=np.float32)


def _box(shape: tuple[int, ...]) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, shape=shape, dtype=np.float32)
