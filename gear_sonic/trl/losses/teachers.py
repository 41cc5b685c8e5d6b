"""Teachers for behaviour cloning: the action a teacher would take in the state the student is in.

A teacher needs the simulator state and the reference, so it runs inside the env as the one term
of an observation group (`teacher_obs`, config/manager_env/observations/teacher/) that the policy
never sees and only the BC loss (bc_losses.TeacherActionBC) reads. The YAML names a teacher by its
dotted path, e.g. `func: gear_sonic.trl.losses.teachers.high_gain_reference_action`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from gear_sonic.envs.manager_env.mdp.actions import raw_actions_for_targets

if TYPE_CHECKING:
    from mjlab.envs import ManagerBasedRlEnv


class high_gain_reference_action:  # noqa: N801 - mjlab looks terms up by function-style names
    """Replay the reference through stiffer virtual PD gains, in the action's units.

    target = q_ref + m * (gain * (q_ref - q) - damping * (qd - qd_ref)), where m selects
    `joint_names`. SONIC's gains (ankles 28.5 N m/rad) are far below the ~240 N m/rad a standing G1
    needs, so a plain replay of the reference tips over within about half a second; amplifying the
    tracking error on the legs and waist through the targets emulates stiffer joints at 50 Hz. The
    result is a crude but real balance teacher for `bc_loss/teacher_action` (measured numbers in
    the sonic_cpu preset).
    """

    def __init__(self, cfg, env: ManagerBasedRlEnv):
        params = cfg.params
        robot = env.command_manager.get_term(params["command_name"]).robot
        ids, _ = robot.find_joints(list(params["joint_names"]))
        self.mask = torch.zeros(robot.num_joints, device=env.device)
        self.mask[ids] = 1.0

    def __call__(
        self,
        env: ManagerBasedRlEnv,
        command_name: str,
        action_name: str,
        gain: float,
        damping: float,
        joint_names: list[str],
    ) -> torch.Tensor:
        cmd = env.command_manager.get_term(command_name)
        term = env.action_manager.get_term(action_name)
        data = cmd.robot.data
        error = cmd.ref_joint_pos - data.joint_pos
        feedback = gain * error - damping * (data.joint_vel - cmd.ref_joint_vel)
        target = cmd.ref_joint_pos + self.mask * feedback
        return raw_actions_for_targets(term, target, cmd.ref_joint_pos)
