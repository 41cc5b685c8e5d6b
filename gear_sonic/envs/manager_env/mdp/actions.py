"""Action terms. `ReferenceJointPositionAction`: PD targets relative to the reference pose.

target = reference joint positions (current frame of the motion command) + scale * action.
A zero action then replays the reference through the PD controllers, so a fresh policy already
stands and walks for a while and learning starts from tracking, not from falling. SONIC's own
action (default pose + scale * action) is `joint_position`; this is the option the CPU demo uses
to learn visibly within minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from mjlab.envs.mdp.actions import JointPositionAction, JointPositionActionCfg

if TYPE_CHECKING:
    from mjlab.envs import ManagerBasedRlEnv


@dataclass(kw_only=True)
class ReferenceJointPositionActionCfg(JointPositionActionCfg):
    command_name: str = "motion"

    def build(self, env: ManagerBasedRlEnv) -> ReferenceJointPositionAction:
        return ReferenceJointPositionAction(self, env)


class ReferenceJointPositionAction(JointPositionAction):
    cfg: ReferenceJointPositionActionCfg

    def process_actions(self, actions):
        reference = self._env.command_manager.get_term(self.cfg.command_name).ref_joint_pos
        self._raw_actions[:] = actions
        self._processed_actions = reference[:, self._target_ids] + self._raw_actions * self._scale


def raw_actions_for_targets(
    term: JointPositionAction, targets: torch.Tensor, ref_joint_pos: torch.Tensor
) -> torch.Tensor:
    """The raw action that makes `term` command `targets` (both joint tensors in robot order).

    Inverts target = origin + scale * action, where origin is the default pose for SONIC's action
    and the current reference for `ReferenceJointPositionAction`.
    """
    ids = term.target_ids
    origin = ref_joint_pos[:, ids] if isinstance(term, ReferenceJointPositionAction) else term.offset
    return (targets[:, ids] - origin) / term.scale
