"""Task reward terms of the AMP walking task that mjlab does not provide."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from mjlab.managers.scene_entity_config import SceneEntityCfg

if TYPE_CHECKING:
    from mjlab.envs import ManagerBasedRlEnv

_ROBOT = SceneEntityCfg("robot")


def base_height_l2(
    env: ManagerBasedRlEnv, target_height: float, asset_cfg: SceneEntityCfg = _ROBOT
) -> torch.Tensor:
    """(root height - target)^2 on flat ground (weight negative in the YAML)."""
    height = env.scene[asset_cfg.name].data.root_link_pos_w[:, 2]
    return torch.square(height - target_height)
