"""What the env builder needs to know about a robot, independent of the task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mjlab.entity import EntityCfg
from mjlab.sensor import SensorCfg


@dataclass(frozen=True)
class RobotSpec:
    name: str
    entity_cfg: Callable[[], EntityCfg]  # a fresh mjlab entity config each call
    contact_sensors: Callable[[], tuple[SensorCfg, ...]]
    action_scale: dict[str, float]  # joint regex -> action scale
    joint_names: tuple[str, ...]  # XML order = action order
    tracked_bodies: tuple[str, ...]
    anchor_body: str
    foot_geoms_regex: str
    vr_bodies: tuple[str, ...]  # head and hands of a VR teleoperator
    vr_offsets: tuple[tuple[float, float, float], ...]
    wrist_joints: tuple[str, ...]
