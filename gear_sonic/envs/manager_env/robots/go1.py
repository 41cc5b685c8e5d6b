"""Unitree Go1 (12 DoF) exactly as mjlab ships it, for parity runs against mjlab's velocity task.

Entity, gains, collisions and action scale are mjlab's (asset_zoo/robots/unitree_go1). The
sensors are those of mjlab's `Mjlab-Velocity-Flat-Unitree-Go1` task, taken from its own config so
the two cannot drift: `feet_ground_contact` (foot geoms on the terrain, with air time) and
`foot_height_scan` (a 4-ray ring under each foot site; a ray-cast sensor, so MJWarp only).
"""

from __future__ import annotations

from mjlab.asset_zoo.robots.unitree_go1.go1_constants import GO1_ACTION_SCALE, get_go1_robot_cfg
from mjlab.sensor import SensorCfg

from gear_sonic.envs.manager_env.robots.spec import RobotSpec

GO1_LEGS: tuple[str, ...] = ("FR", "FL", "RR", "RL")  # XML order
GO1_JOINT_NAMES: tuple[str, ...] = tuple(
    f"{leg}_{part}_joint" for leg in GO1_LEGS for part in ("hip", "thigh", "calf")
)
GO1_BASE_BODY = "trunk"


def go1_sensors() -> tuple[SensorCfg, ...]:
    # Imported here: importing mjlab's task package registers its tasks.
    from mjlab.tasks.velocity.config.go1.env_cfgs import unitree_go1_flat_env_cfg

    return tuple(unitree_go1_flat_env_cfg().scene.sensors or ())


GO1 = RobotSpec(
    name="go1",
    entity_cfg=get_go1_robot_cfg,
    contact_sensors=go1_sensors,
    action_scale=dict(GO1_ACTION_SCALE),
    joint_names=GO1_JOINT_NAMES,
    tracked_bodies=(GO1_BASE_BODY,),
    anchor_body=GO1_BASE_BODY,
    foot_geoms_regex=r"^[FR][LR]_foot_collision$",
    vr_bodies=(),
    vr_offsets=(),
    wrist_joints=(),
)
