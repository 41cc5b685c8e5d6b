"""Unitree G1 (29 DoF) as the tracker sees it.

The MuJoCo model, actuator gains and keyframe come from mjlab's asset zoo (REFERENCE section 2:
kp = armature * w^2, kd = 2 * zeta * armature * w, w = 2 pi 10 Hz, zeta = 2). This module adds
what the tracking MDP needs on top: tracked bodies, VR 3-point bodies, contact sensing.
"""

from __future__ import annotations

from mjlab.asset_zoo.robots.unitree_g1.g1_constants import G1_ACTION_SCALE, get_g1_robot_cfg
from mjlab.entity import EntityCfg
from mjlab.sensor import ContactMatch, ContactSensorCfg

from gear_sonic.envs.manager_env.robots.spec import RobotSpec

# Joint order is the XML order (= SONIC's "MuJoCo order").
G1_JOINT_NAMES: tuple[str, ...] = (
    "left_hip_pitch_joint", "left_hip_roll_joint", "left_hip_yaw_joint",
    "left_knee_joint", "left_ankle_pitch_joint", "left_ankle_roll_joint",
    "right_hip_pitch_joint", "right_hip_roll_joint", "right_hip_yaw_joint",
    "right_knee_joint", "right_ankle_pitch_joint", "right_ankle_roll_joint",
    "waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint",
    "left_shoulder_pitch_joint", "left_shoulder_roll_joint", "left_shoulder_yaw_joint",
    "left_elbow_joint", "left_wrist_roll_joint", "left_wrist_pitch_joint",
    "left_wrist_yaw_joint",
    "right_shoulder_pitch_joint", "right_shoulder_roll_joint", "right_shoulder_yaw_joint",
    "right_elbow_joint", "right_wrist_roll_joint", "right_wrist_pitch_joint",
    "right_wrist_yaw_joint",
)  # fmt: skip

# The 14 bodies whose poses are tracked; the first one is the anchor (SONIC anchors on the pelvis).
G1_TRACKED_BODIES: tuple[str, ...] = (
    "pelvis",
    "left_hip_roll_link", "left_knee_link", "left_ankle_roll_link",
    "right_hip_roll_link", "right_knee_link", "right_ankle_roll_link",
    "torso_link",
    "left_shoulder_roll_link", "left_elbow_link", "left_wrist_yaw_link",
    "right_shoulder_roll_link", "right_elbow_link", "right_wrist_yaw_link",
)  # fmt: skip

# VR 3-point targets: head (torso + 0.35 m up) and both hands (wrist + palm offset).
G1_VR_3POINT_BODIES: tuple[str, ...] = ("torso_link", "left_wrist_yaw_link", "right_wrist_yaw_link")
G1_VR_3POINT_OFFSETS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 0.35),
    (0.18, -0.025, 0.0),
    (0.18, 0.025, 0.0),
)

# Bodies allowed to touch things without a penalty (feet, hands, elbows).
G1_ALLOWED_CONTACT_BODIES: tuple[str, ...] = (
    "left_ankle_roll_link", "right_ankle_roll_link",
    "left_wrist_yaw_link", "right_wrist_yaw_link",
    "left_elbow_link", "right_elbow_link",
)  # fmt: skip

G1_FOOT_GEOMS_REGEX = r"^(left|right)_foot[1-7]_collision$"


def g1_entity_cfg() -> EntityCfg:
    """mjlab's G1 entity (full collisions, implicit PD actuators, knees-bent keyframe)."""
    return get_g1_robot_cfg()


def g1_contact_sensors() -> tuple[ContactSensorCfg, ...]:
    """Net contact force on every body the undesired-contact penalty watches."""
    watched = tuple(
        name for name in _G1_ALL_BODIES if name not in G1_ALLOWED_CONTACT_BODIES
    )
    undesired = ContactSensorCfg(
        name="undesired_contacts",
        primary=ContactMatch(mode="body", pattern=watched, entity="robot"),
        secondary=None,
        fields=("force",),  # the penalty reads the force only; each field is one MuJoCo sensor per body
        reduce="netforce",
        num_slots=1,
    )
    # Net force of the ground on each foot (ankle roll subtree): AMP's foot-contact feature.
    feet = ContactSensorCfg(
        name="feet_contact",
        primary=ContactMatch(
            mode="subtree", pattern=r"^(left_ankle_roll_link|right_ankle_roll_link)$", entity="robot"
        ),
        secondary=ContactMatch(mode="body", pattern="terrain"),
        fields=("force",),
        reduce="netforce",
        num_slots=1,
    )
    return (undesired, feet)


_G1_ALL_BODIES: tuple[str, ...] = (
    "pelvis",
    "left_hip_pitch_link", "left_hip_roll_link", "left_hip_yaw_link", "left_knee_link",
    "left_ankle_pitch_link", "left_ankle_roll_link",
    "right_hip_pitch_link", "right_hip_roll_link", "right_hip_yaw_link", "right_knee_link",
    "right_ankle_pitch_link", "right_ankle_roll_link",
    "waist_yaw_link", "waist_roll_link", "torso_link",
    "left_shoulder_pitch_link", "left_shoulder_roll_link", "left_shoulder_yaw_link",
    "left_elbow_link", "left_wrist_roll_link", "left_wrist_pitch_link", "left_wrist_yaw_link",
    "right_shoulder_pitch_link", "right_shoulder_roll_link", "right_shoulder_yaw_link",
    "right_elbow_link", "right_wrist_roll_link", "right_wrist_pitch_link",
    "right_wrist_yaw_link",
)  # fmt: skip

G1 = RobotSpec(
    name="g1",
    entity_cfg=g1_entity_cfg,
    contact_sensors=g1_contact_sensors,
    action_scale=dict(G1_ACTION_SCALE),
    joint_names=G1_JOINT_NAMES,
    tracked_bodies=G1_TRACKED_BODIES,
    anchor_body="pelvis",
    foot_geoms_regex=G1_FOOT_GEOMS_REGEX,
    vr_bodies=G1_VR_3POINT_BODIES,
    vr_offsets=G1_VR_3POINT_OFFSETS,
    wrist_joints=tuple(name for name in G1_JOINT_NAMES if "wrist" in name),
)
