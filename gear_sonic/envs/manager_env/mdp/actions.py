"""Joint-position action terms and their inverse.

SONIC's action is mjlab's `JointPositionAction`: target = default pose + scale * action
(`type: joint_position`, actions/tracking/joint_pos.yaml, used by every preset).
`ReferenceJointPositionAction` (`type: reference_joint_position`,
actions/tracking/reference_joint_pos.yaml) is the residual alternative: target = the motion
command's current reference joints + scale * action, so a zero action replays the reference.
`raw_actions_for_targets` inverts either one (motion replay, the behaviour-cloning teacher).
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
    use_default_offset: bool = False  # the reference is the offset

    def __post_init__(self):
        super().__post_init__()
        if self.use_default_offset or self.offset != 0.0:
            raise ValueError(
                "a reference_joint_position action is offset by the motion reference: remove "
                "use_default_offset / offset (or use type: joint_position)"
            )

    def build(self, env: ManagerBasedRlEnv) -> ReferenceJointPositionAction:
        return ReferenceJointPositionAction(self, env)


class ReferenceJointPositionAction(JointPositionAction):
    cfg: ReferenceJointPositionActionCfg

    def process_actions(self, actions: torch.Tensor) -> None:
        # The base class adds the offset; here the current reference takes its place.
        super().process_actions(actions)
        reference = self._env.command_manager.get_term(self.cfg.command_name).ref_joint_pos
        self._processed_actions = reference[:, self._target_ids] + self._raw_actions * self._scale
        if self.cfg.clip is not None:
            self._processed_actions = torch.clamp(
                self._processed_actions, min=self._clip[:, :, 0], max=self._clip[:, :, 1]
            )


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
