"""Unitree Go1 (12 DoF) exactly as mjlab ships it, for parity runs against mjlab's velocity task.

Entity, gains, collisions and action scale are mjlab's (asset_zoo/robots/unitree_go1); this module
adds the contact sensors our locomotion terms read, with the same names as for the Go2.
"""

from __future__ import annotations

from mjlab.asset_zoo.robots.unitree_go1.go1_constants import GO1_ACTION_SCALE, get_go1_robot_cfg
from mjlab.sensor import ContactSensorCfg

from gear_sonic.envs.manager_env.robots.go2 import quadruped_contact_sensors
from gear_sonic.envs.manager_env.robots.spec import RobotSpec

GO1_LEGS: tuple[str, ...] = ("FR", "FL", "RR", "RL")  # XML order
GO1_JOINT_NAMES: tuple[str, ...] = tuple(
    f"{leg}_{part}_joint" for leg in GO1_LEGS for part in ("hip", "thigh", "calf")
)
GO1_FOOT_GEOMS: tuple[str, ...] = tuple(f"{leg}_foot_collision" for leg in GO1_LEGS)
GO1_BASE_BODY = "trunk"


def go1_contact_sensors() -> tuple[ContactSensorCfg, ...]:
    thighs = tuple(f"{leg}_thigh" for leg in GO1_LEGS)
    return quadruped_contact_sensors(GO1_FOOT_GEOMS, GO1_BASE_BODY, thighs)


GO1 = RobotSpec(
    name="go1",
    entity_cfg=get_go1_robot_cfg,
    contact_sensors=go1_contact_sensors,
    action_scale=dict(GO1_ACTION_SCALE),
    joint_names=GO1_JOINT_NAMES,
    tracked_bodies=(GO1_BASE_BODY,),
    anchor_body=GO1_BASE_BODY,
    foot_geoms_regex=r"^(FR|FL|RR|RL)_foot_collision$",
    vr_bodies=(),
    vr_offsets=(),
    wrist_joints=(),
)
