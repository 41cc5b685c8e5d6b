"""+exp=manager/locomotion/go1_velocity is mjlab's Mjlab-Velocity-Flat-Unitree-Go1, term for term:
same term names and order, functions, parameters, weights, modes, noise, command, action scale,
sensors and simulation options (observation groups renamed actor -> actor_obs, critic -> critic_obs)."""

from __future__ import annotations

import dataclasses

import pytest
from mjlab.tasks.velocity.config.go1.env_cfgs import unitree_go1_flat_env_cfg

from gear_sonic.envs.manager_env.builder import build_env_cfg
from tests.conftest import compose_config

GROUPS = {"actor_obs": "actor", "critic_obs": "critic"}


def comparable(value):
    """Scene entity configs by what they select (their resolved ids differ until the env binds them)."""
    if hasattr(value, "joint_names") and hasattr(value, "site_names"):
        return (value.name, value.joint_names, value.body_names, value.geom_names, value.site_names)
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(comparable(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: comparable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return type(value).__name__, fields
    return value


def term_differences(ours: dict, reference: dict, section: str) -> list[str]:
    out = []
    if list(ours) != list(reference):
        out.append(f"{section}: terms {list(ours)} != mjlab's {list(reference)}")
    for name, ref_term in reference.items():
        if name not in ours:
            continue
        for field in dataclasses.fields(ref_term):
            a, b = getattr(ours[name], field.name), getattr(ref_term, field.name)
            if comparable(a) != comparable(b):
                out.append(f"{section}.{name}.{field.name}: {a!r} != mjlab's {b!r}")
    return out


def parity_differences(*overrides: str) -> list[str]:
    cfg = compose_config("+exp=manager/locomotion/go1_velocity", *overrides)
    ours = build_env_cfg(cfg.manager_env, num_envs=2)
    ref = unitree_go1_flat_env_cfg()
    out = []
    for section in ("rewards", "events", "terminations", "curriculum", "metrics", "actions"):
        out += term_differences(getattr(ours, section), getattr(ref, section), section)
    for ours_group, ref_group in GROUPS.items():
        a, b = ours.observations[ours_group], ref.observations[ref_group]
        out += term_differences(a.terms, b.terms, f"observations.{ours_group}")
        if a.enable_corruption != b.enable_corruption:
            out.append(f"observations.{ours_group}.enable_corruption")
    for name in ("twist",):
        a, b = comparable(ours.commands[name]), comparable(ref.commands[name])
        out += [f"commands.{name}.{k}" for k in b[1] if k != "debug_vis" and a[1][k] != b[1][k]]
    if comparable(ours.scene.sensors) != comparable(ref.scene.sensors):
        out.append("scene.sensors")
    ours_sim, ref_sim = comparable(ours.sim)[1], comparable(ref.sim)[1]
    out += [f"sim.{k}: {ours_sim[k]!r} != mjlab's {v!r}" for k, v in ref_sim.items() if ours_sim[k] != v]
    for key in ("decimation", "episode_length_s"):
        if getattr(ours, key) != getattr(ref, key):
            out.append(key)
    return out


def test_go1_velocity_mirrors_mjlabs_flat_go1_task():
    assert parity_differences() == []


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("manager_env.rewards.foot_slip.weight=-0.2", "rewards.foot_slip.weight"),
        ("manager_env.config.cone=pyramidal", "sim.mujoco"),
        ("manager_env.commands.twist.rel_standing_envs=0.2", "commands.twist.rel_standing_envs"),
        (
            "manager_env.observations.actor_obs.terms.joint_vel.noise.n_max=1.0",
            "observations.actor_obs.joint_vel.noise",
        ),
    ],
)
def test_the_parity_check_sees_a_changed_term(override, expected):
    assert any(d.startswith(expected) for d in parity_differences(override))
