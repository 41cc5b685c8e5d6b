"""The residual action (actions/tracking/reference_joint_pos.yaml): reference + scale * a."""

from __future__ import annotations

import pytest
import torch

from gear_sonic.envs import create_manager_env
from gear_sonic.envs.manager_env.builder import build_env_cfg
from gear_sonic.envs.manager_env.mdp.actions import raw_actions_for_targets
from gear_sonic.envs.manager_env.terms import EnvConfigError
from tests.conftest import EXACT_RESET, RELEASE_PRESET, compose_config

REFERENCE_ACTION = "manager_env/actions=tracking/reference_joint_pos"


def test_zero_residual_action_targets_the_reference(standing_clip):
    cfg = compose_config(RELEASE_PRESET, *EXACT_RESET, REFERENCE_ACTION,
                         f"manager_env.commands.motion.motion_file={standing_clip}")  # fmt: skip
    wrapper = create_manager_env(cfg, device="cpu", num_envs=2)
    try:
        env, cmd = wrapper.env, wrapper.command()
        term = env.action_manager.get_term("joint_pos")
        torch.testing.assert_close(wrapper.reference_actions(), torch.zeros(2, wrapper.num_actions))
        actions = torch.full((2, wrapper.num_actions), 0.5)
        env.action_manager.process_action(actions)
        expected = cmd.ref_joint_pos[:, term.target_ids] + 0.5 * term.scale
        torch.testing.assert_close(term._processed_actions, expected)
        torch.testing.assert_close(
            raw_actions_for_targets(term, expected, cmd.ref_joint_pos), actions
        )
    finally:
        wrapper.close()


@pytest.mark.parametrize(
    "override",
    [
        "++manager_env.actions.joint_pos.use_default_offset=true",
        "++manager_env.actions.joint_pos.offset=0.1",
    ],
)
def test_residual_action_refuses_a_second_offset(override):
    cfg = compose_config(RELEASE_PRESET, REFERENCE_ACTION, override)
    with pytest.raises(EnvConfigError, match=r"manager_env\.actions\.joint_pos: .*offset"):
        build_env_cfg(cfg.manager_env, num_envs=2)
