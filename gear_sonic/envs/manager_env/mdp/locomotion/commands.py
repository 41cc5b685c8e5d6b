"""YAML `commands.<name>` with `type: velocity` -> mjlab's UniformVelocityCommandCfg.

The command is (lin_vel_x, lin_vel_y, ang_vel_z) in the base frame, resampled every
`resampling_time_range` seconds. A share `rel_standing_envs` of the envs gets a zero command;
with `heading_command`, a share `rel_heading_envs` steers toward a sampled heading instead of a
sampled yaw rate (yaw rate = stiffness x heading error, clipped to ang_vel_z).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mjlab.tasks.velocity.mdp import UniformVelocityCommandCfg

from gear_sonic.envs.manager_env.terms import EnvConfigError


class VelocityCommandError(EnvConfigError):
    """A velocity command entry that cannot become a UniformVelocityCommandCfg."""


def velocity_command_cfg(entry: dict[str, Any], key: str) -> UniformVelocityCommandCfg:
    """Build the command config; errors name the YAML key and the accepted keys."""
    entry = dict(entry)
    ranges = entry.pop("ranges", None)
    if not isinstance(ranges, dict):
        raise VelocityCommandError(
            f"{key}.ranges is required: a mapping with lin_vel_x, lin_vel_y, ang_vel_z "
            "(each [min, max]) and heading when heading_command is true"
        )
    range_fields = {f.name for f in dataclasses.fields(UniformVelocityCommandCfg.Ranges)}
    unknown = set(ranges) - range_fields
    if unknown:
        raise VelocityCommandError(
            f"{key}.ranges: unknown keys {sorted(unknown)}; allowed: {sorted(range_fields)}"
        )
    fields = {f.name for f in dataclasses.fields(UniformVelocityCommandCfg)} - {"ranges"}
    unknown = set(entry) - fields
    if unknown:
        raise VelocityCommandError(
            f"{key}: unknown keys {sorted(unknown)}; allowed: {sorted(fields)}"
        )
    entry.setdefault("entity_name", "robot")
    entry.setdefault("debug_vis", False)
    try:
        parsed_ranges = UniformVelocityCommandCfg.Ranges(
            **{name: _pair(value, f"{key}.ranges.{name}") for name, value in ranges.items()}
        )
        if "resampling_time_range" in entry:
            entry["resampling_time_range"] = _pair(
                entry["resampling_time_range"], f"{key}.resampling_time_range"
            )
        return UniformVelocityCommandCfg(ranges=parsed_ranges, **entry)
    except (TypeError, ValueError) as err:
        raise VelocityCommandError(f"{key}: {err}") from None


def _pair(value: Any, key: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise VelocityCommandError(f"{key} must be [min, max], got {value!r}")
    low, high = float(value[0]), float(value[1])
    if low > high:
        raise VelocityCommandError(f"{key}: min {low} is above max {high}")
    return low, high
