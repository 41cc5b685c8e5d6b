"""Privileged observations: what the simulator knows and a real Go2 does not measure.

They read the (possibly randomised) model of each env, so the critic and a teacher actor see the
friction and mass that domain randomisation drew.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from mjlab.managers.scene_entity_config import SceneEntityCfg

if TYPE_CHECKING:
    from mjlab.envs import ManagerBasedRlEnv


def _per_env(field: torch.Tensor, num_envs: int) -> torch.Tensor:
    """Model fields not randomised yet hold one row for all envs; broadcast it."""
    return field.expand(num_envs, *field.shape[1:]) if field.shape[0] != num_envs else field


def geom_friction(env: ManagerBasedRlEnv, asset_cfg: SceneEntityCfg) -> torch.Tensor:
    """(N, geoms) sliding friction coefficient of the selected geoms (e.g. the feet)."""
    entity = env.scene[asset_cfg.name]
    ids = entity.indexing.geom_ids[asset_cfg.geom_ids]
    friction = _per_env(env.sim.model.geom_friction, env.num_envs)
    return friction[:, ids, 0]


def body_mass(env: ManagerBasedRlEnv, asset_cfg: SceneEntityCfg) -> torch.Tensor:
    """(N, bodies) mass in kg of the selected bodies (e.g. the base)."""
    entity = env.scene[asset_cfg.name]
    ids = entity.indexing.body_ids[asset_cfg.body_ids]
    mass = _per_env(env.sim.model.body_mass, env.num_envs)
    return mass[:, ids]
