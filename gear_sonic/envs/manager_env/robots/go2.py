"""Unitree Go2 (12 DoF) for velocity locomotion.

Model: data/robots/go2/go2.xml, MuJoCo Menagerie's Go2 (BSD-3-Clause, Unitree Robotics) with
collision primitives only (see data/robots/go2/README.md). Actuators follow mjlab's Go1 recipe:
implicit PD with kp = armature * w^2, kd = 2 * zeta * armature * w (zeta = 2), armature = the
rotor's reflected inertia. Go2 publishes torque and speed limits but not its rotor inertia; we
reuse Go1's (same motor family and gear ratios). Go1's w = 2 pi 10 Hz is too soft for the heavier
Go2 (15.2 kg vs 12.7 kg), measured with zero actions for 1 s from 0.30 m (mujoco C, flat ground):
10 Hz sinks the base to 0.19 m, 12.5 Hz to 0.22 m, 15 Hz to 0.25 m, about where mjlab's Go1 stays
at 10 Hz (0.248 m from 0.278 m). So w = 2 pi 15 Hz: kp 35.8 (hip, thigh) and 80.5 (knee) N m/rad.
"""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
from mjlab.actuator import BuiltinPositionActuatorCfg
from mjlab.entity import EntityArticulationInfoCfg, EntityCfg
from mjlab.sensor import ContactMatch, ContactSensorCfg
from mjlab.utils.actuator import ElectricActuator, reflected_inertia
from mjlab.utils.spec_config import CollisionCfg

from gear_sonic.envs.manager_env.robots.spec import RobotSpec

GO2_XML = Path(__file__).resolve().parents[4] / "data" / "robots" / "go2" / "go2.xml"

GO2_LEGS: tuple[str, ...] = ("FL", "FR", "RL", "RR")  # XML order
GO2_JOINT_NAMES: tuple[str, ...] = tuple(
    f"{leg}_{part}_joint" for leg in GO2_LEGS for part in ("hip", "thigh", "calf")
)
GO2_FOOT_GEOMS: tuple[str, ...] = tuple(f"{leg}_foot_collision" for leg in GO2_LEGS)
GO2_FOOT_SITES: tuple[str, ...] = tuple(f"{leg}_foot" for leg in GO2_LEGS)
GO2_FOOT_GEOMS_REGEX = r"^(FL|FR|RL|RR)_foot_collision$"
# Touching the ground with the base ends the episode; with thighs or shins it is penalised (the
# shin geoms, not the calf body, which also holds the foot).
GO2_BASE_BODY = "base"
GO2_UNDESIRED_CONTACT_GEOMS: tuple[str, ...] = tuple(
    f"{leg}_{geom}"
    for leg in GO2_LEGS
    for geom in ("thigh_collision", "calf_collision1", "calf_collision2")
)

_ROTOR_INERTIA = 0.000111842  # Go1's (unitree_ros go1.urdf), see the module docstring
_HIP_GEAR_RATIO = 6.0
_KNEE_GEAR_RATIO = _HIP_GEAR_RATIO * 1.5
# Limits from the Menagerie model (ctrlrange) and Unitree's go2 URDF (velocity).
HIP_ACTUATOR = ElectricActuator(
    reflected_inertia=reflected_inertia(_ROTOR_INERTIA, _HIP_GEAR_RATIO),
    velocity_limit=30.1,
    effort_limit=23.7,
)
KNEE_ACTUATOR = ElectricActuator(
    reflected_inertia=reflected_inertia(_ROTOR_INERTIA, _KNEE_GEAR_RATIO),
    velocity_limit=15.7,
    effort_limit=45.43,
)
NATURAL_FREQ = 2.0 * math.pi * 15.0  # see the module docstring
DAMPING_RATIO = 2.0


def _pd_actuator(names: tuple[str, ...], motor: ElectricActuator) -> BuiltinPositionActuatorCfg:
    armature = motor.reflected_inertia
    return BuiltinPositionActuatorCfg(
        target_names_expr=names,
        stiffness=armature * NATURAL_FREQ**2,
        damping=2.0 * DAMPING_RATIO * armature * NATURAL_FREQ,
        effort_limit=motor.effort_limit,
        armature=armature,
    )


GO2_ACTUATORS = (
    _pd_actuator((".*_hip_joint", ".*_thigh_joint"), HIP_ACTUATOR),
    _pd_actuator((".*_calf_joint",), KNEE_ACTUATOR),
)
# Action scale per joint regex: a unit action asks for a quarter of the peak torque at rest.
GO2_ACTION_SCALE: dict[str, float] = {
    name: 0.25 * act.effort_limit / act.stiffness
    for act in GO2_ACTUATORS
    for name in act.target_names_expr
}

# Standing pose: Menagerie's "home" keyframe, dropped from a little higher.
GO2_INIT_STATE = EntityCfg.InitialStateCfg(
    pos=(0.0, 0.0, 0.30),
    joint_pos={".*_hip_joint": 0.0, ".*_thigh_joint": 0.9, ".*_calf_joint": -1.8},
    joint_vel={".*": 0.0},
)

# Every primitive collides; feet get rubber-like contacts (condim 6, torsional/rolling friction)
# and priority over the ground, the rest is frictionless (condim 1), as in mjlab's Go1.
GO2_COLLISION = CollisionCfg(
    geom_names_expr=(r".*_collision\d*",),
    contype=1,
    conaffinity=1,
    solref=(0.01, 1),
    condim={GO2_FOOT_GEOMS_REGEX: 6, r".*_collision\d*": 1},
    priority={GO2_FOOT_GEOMS_REGEX: 1, ".*": 0},
    friction={GO2_FOOT_GEOMS_REGEX: (1.0, 5e-3, 5e-4)},
)


def go2_spec() -> mujoco.MjSpec:
    if not GO2_XML.is_file():
        raise FileNotFoundError(f"Go2 model missing: {GO2_XML} (it ships with the repository)")
    return mujoco.MjSpec.from_file(str(GO2_XML))


def go2_entity_cfg() -> EntityCfg:
    return EntityCfg(
        init_state=GO2_INIT_STATE,
        collisions=(GO2_COLLISION,),
        spec_fn=go2_spec,
        articulation=EntityArticulationInfoCfg(
            actuators=GO2_ACTUATORS, soft_joint_pos_limit_factor=0.9
        ),
    )


def go2_contact_sensors() -> tuple[ContactSensorCfg, ...]:
    """Feet on the ground (with air time), base on the ground, legs on the ground."""
    ground = ContactMatch(mode="body", pattern="terrain")
    feet = ContactSensorCfg(
        name="feet_ground_contact",
        primary=ContactMatch(mode="geom", pattern=GO2_FOOT_GEOMS, entity="robot"),
        secondary=ground,
        fields=("found", "force"),
        reduce="netforce",
        num_slots=1,
        track_air_time=True,
    )
    base = ContactSensorCfg(
        name="base_contact",
        primary=ContactMatch(mode="body", pattern=(GO2_BASE_BODY,), entity="robot"),
        secondary=ground,
        fields=("found", "force"),
        reduce="netforce",
        num_slots=1,
    )
    undesired = ContactSensorCfg(
        name="undesired_contacts",
        primary=ContactMatch(mode="geom", pattern=GO2_UNDESIRED_CONTACT_GEOMS, entity="robot"),
        secondary=ground,
        fields=("found", "force"),
        reduce="netforce",
        num_slots=1,
    )
    return feet, base, undesired


GO2 = RobotSpec(
    name="go2",
    entity_cfg=go2_entity_cfg,
    contact_sensors=go2_contact_sensors,
    action_scale=GO2_ACTION_SCALE,
    joint_names=GO2_JOINT_NAMES,
    tracked_bodies=(GO2_BASE_BODY,),  # no motion tracking on a quadruped: the base only
    anchor_body=GO2_BASE_BODY,
    foot_geoms_regex=GO2_FOOT_GEOMS_REGEX,
    vr_bodies=(),
    vr_offsets=(),
    wrist_joints=(),
)
