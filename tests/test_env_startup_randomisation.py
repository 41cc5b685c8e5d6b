"""Startup domain randomisation of the release preset: every sampled quantity reaches the model.

mjlab's `dr.pseudo_inertia` rebuilds mass, COM and inertia from the default model, so an earlier
COM offset on the same body would be silently undone; the events YAML orders mass first.
"""

from __future__ import annotations

import math

import torch

from gear_sonic.envs import create_manager_env
from tests.conftest import RELEASE_PRESET, compose_config

NUM_ENVS = 6
COM_RANGES = ((-0.025, 0.025), (-0.05, 0.05), (-0.05, 0.05))  # events/tracking/level0_4.yaml
ALPHA_RANGE = (-0.1116, 0.4581)  # mass x e^(2 alpha)


def test_torso_mass_and_com_both_randomised(standing_clip):
    cfg = compose_config(RELEASE_PRESET, f"manager_env.commands.motion.motion_file={standing_clip}")
    events = list(cfg.manager_env.events)
    assert events.index("randomize_rigid_body_mass") < events.index("base_com")
    wrapper = create_manager_env(cfg, device="cpu", num_envs=NUM_ENVS)
    try:
        sim = wrapper.env.sim
        robot = wrapper.env.scene["robot"]
        ids, _ = robot.find_bodies(("torso_link",))
        torso = int(robot.indexing.body_ids[ids[0]])
        mass = sim.model.body_mass[:, torso]
        com = sim.model.body_ipos[:, torso]
        inertia = sim.model.body_inertia[:, torso]
        default_mass = sim.get_default_field("body_mass")[torso]
        default_com = sim.get_default_field("body_ipos")[torso]
        default_inertia = sim.get_default_field("body_inertia")[torso]
    finally:
        wrapper.close()

    assert mass.shape == (NUM_ENVS,) and com.shape == (NUM_ENVS, 3)
    ratio = mass / default_mass
    low, high = (math.exp(2 * a) for a in ALPHA_RANGE)
    assert ((ratio > low - 1e-4) & (ratio < high + 1e-4)).all(), ratio
    assert ratio.std() > 1e-3, "each world samples its own mass"
    # Pseudo-inertia alpha scales the rotational inertia with the mass.
    torch.testing.assert_close(
        torch.sort(inertia, dim=-1).values,
        torch.sort(default_inertia[None] * ratio[:, None], dim=-1).values,
        rtol=1e-3,
        atol=1e-6,
    )
    offset = com - default_com
    for axis, (lo, hi) in enumerate(COM_RANGES):
        assert ((offset[:, axis] >= lo - 1e-6) & (offset[:, axis] <= hi + 1e-6)).all(), (
            axis,
            offset,
        )
    # The COM offset survived the mass randomisation: it is not back at the default.
    assert (offset.norm(dim=-1) > 1e-4).all(), offset
    assert offset[:, 1].std() > 1e-3, "each world samples its own COM offset"
