"""Robot registry: `manager_env.config.robot` names one of these."""

from gear_sonic.envs.manager_env.robots.g1 import G1
from gear_sonic.envs.manager_env.robots.go1 import GO1
from gear_sonic.envs.manager_env.robots.go2 import GO2
from gear_sonic.envs.manager_env.robots.spec import RobotSpec

ROBOTS: dict[str, RobotSpec] = {spec.name: spec for spec in (G1, GO1, GO2)}


def get_robot(name: str) -> RobotSpec:
    if name not in ROBOTS:
        raise KeyError(
            f"manager_env.config.robot={name!r} is not a known robot; choose one of {sorted(ROBOTS)}"
        )
    return ROBOTS[name]
