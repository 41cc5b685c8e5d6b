"""Go2 balance task: walk to random goal positions while being pushed ever harder.

State shared by the terms (goal positions, who was pushed, the push speed) lives in one
`BalanceState` on the env, made on first use. Terms:
  events       `resample_goal` (reset and interval: a goal 1-3 m away in a random direction),
               `push_with_curriculum` (interval: a planar velocity kick of the current speed)
  observation  `goal_position_b` (goal in the base yaw frame, clipped)
  rewards      `goal_distance_exp`, `goal_heading_cos`
  curriculum   `push_curriculum`: an episode that had a push *survives* when it ends by time-out
               (not by a fall). The survival rate is an average over recent pushed episodes; once
               it reaches `promote_rate` over `min_episodes` episodes at the current speed, the
               push speed grows by `speed_step` up to `max_speed`. Logged as
               Curriculum/<name>/push_speed and Curriculum/<name>/push_survival_rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from mjlab.managers.scene_entity_config import SceneEntityCfg

if TYPE_CHECKING:
    from mjlab.envs import ManagerBasedRlEnv

_ROBOT = SceneEntityCfg("robot")


@dataclass
class BalanceState:
    goal_w: torch.Tensor  # (N, 2) world-frame goal positions
    pushed: torch.Tensor  # (N,) bool: pushed at least once this episode
    push_speed: float | None = None  # set by the first push term, from its initial_speed
    survived_sum: float = 0.0  # decayed counts over recent pushed episodes (the reported rate)
    pushed_sum: float = 0.0
    level_survived: int = 0  # plain counts at the current push speed (the promotion rule)
    level_pushed: int = 0


def balance_state(env: ManagerBasedRlEnv, initial_speed: float | None = None) -> BalanceState:
    """The env's shared state, made on first use; push terms pass their `initial_speed`
    (whichever term runs first, e.g. an observation, the push speed starts from the config)."""
    state = getattr(env, "_balance_state", None)
    if state is None:
        robot = env.scene["robot"]
        state = BalanceState(
            goal_w=robot.data.root_link_pos_w[:, :2].clone(),
            pushed=torch.zeros(env.num_envs, dtype=torch.bool, device=env.device),
        )
        env._balance_state = state
    if state.push_speed is None and initial_speed is not None:
        state.push_speed = float(initial_speed)
    return state


def _env_ids(env: ManagerBasedRlEnv, env_ids) -> torch.Tensor:
    if env_ids is None or isinstance(env_ids, slice):
        return torch.arange(env.num_envs, device=env.device)
    return env_ids


# ---------------------------------------------------------------- events
def resample_goal(
    env: ManagerBasedRlEnv,
    env_ids: torch.Tensor | None,
    distance_range: tuple[float, float] = (1.0, 3.0),
    asset_cfg: SceneEntityCfg = _ROBOT,
) -> None:
    """A new goal `distance_range` metres from the robot, in a uniformly random direction."""
    env_ids = _env_ids(env, env_ids)
    state = balance_state(env)
    n = env_ids.numel()
    angle = torch.rand(n, device=env.device) * (2 * math.pi)
    low, high = distance_range
    distance = low + torch.rand(n, device=env.device) * (high - low)
    here = env.scene[asset_cfg.name].data.root_link_pos_w[env_ids, :2]
    offset = torch.stack([angle.cos(), angle.sin()], dim=-1) * distance.unsqueeze(-1)
    state.goal_w[env_ids] = here + offset


def push_with_curriculum(
    env: ManagerBasedRlEnv,
    env_ids: torch.Tensor | None,
    initial_speed: float = 0.5,
    asset_cfg: SceneEntityCfg = _ROBOT,
) -> None:
    """Add a planar velocity of 0.5-1 x the current push speed in a random direction."""
    env_ids = _env_ids(env, env_ids)
    state = balance_state(env, initial_speed)
    robot = env.scene[asset_cfg.name]
    n = env_ids.numel()
    angle = torch.rand(n, device=env.device) * (2 * math.pi)
    speed = state.push_speed * (0.5 + 0.5 * torch.rand(n, device=env.device))
    velocity = robot.data.root_link_vel_w[env_ids].clone()
    velocity[:, 0] += speed * angle.cos()
    velocity[:, 1] += speed * angle.sin()
    robot.write_root_link_velocity_to_sim(velocity, env_ids=env_ids)
    state.pushed[env_ids] = True


# ---------------------------------------------------------------- observations
def goal_position_b(
    env: ManagerBasedRlEnv, max_distance: float = 5.0, asset_cfg: SceneEntityCfg = _ROBOT
) -> torch.Tensor:
    """(N, 2) goal minus base position, rotated into the base yaw frame, norm clipped."""
    data = env.scene[asset_cfg.name].data
    delta = balance_state(env).goal_w - data.root_link_pos_w[:, :2]
    heading = data.heading_w
    cos, sin = heading.cos(), heading.sin()
    local = torch.stack([cos * delta[:, 0] + sin * delta[:, 1],
                         -sin * delta[:, 0] + cos * delta[:, 1]], dim=-1)
    norm = local.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    return local * (norm.clamp_max(max_distance) / norm)


# ---------------------------------------------------------------- rewards
def goal_distance_exp(
    env: ManagerBasedRlEnv, std: float = 1.0, asset_cfg: SceneEntityCfg = _ROBOT
) -> torch.Tensor:
    """exp(-distance / std): 1 at the goal."""
    data = env.scene[asset_cfg.name].data
    distance = (balance_state(env).goal_w - data.root_link_pos_w[:, :2]).norm(dim=-1)
    return torch.exp(-distance / std)


def goal_heading_cos(
    env: ManagerBasedRlEnv, near: float = 0.3, asset_cfg: SceneEntityCfg = _ROBOT
) -> torch.Tensor:
    """cos(angle between the base heading and the direction to the goal); 1 within `near` m
    of the goal, where any heading is fine."""
    data = env.scene[asset_cfg.name].data
    delta = balance_state(env).goal_w - data.root_link_pos_w[:, :2]
    error = torch.atan2(delta[:, 1], delta[:, 0]) - data.heading_w
    far = delta.norm(dim=-1) > near
    return torch.where(far, error.cos(), torch.ones_like(error))


# ---------------------------------------------------------------- curriculum
def push_curriculum(
    env: ManagerBasedRlEnv,
    env_ids: torch.Tensor | None,
    initial_speed: float = 0.5,
    speed_step: float = 0.25,
    max_speed: float = 2.0,
    promote_rate: float = 0.8,
    min_episodes: int = 32,
    rate_decay: float = 0.98,
) -> dict[str, torch.Tensor]:
    """Called for the envs being reset: score their pushed episodes, maybe raise the speed."""
    env_ids = _env_ids(env, env_ids)
    state = balance_state(env, initial_speed)
    pushed = state.pushed[env_ids]
    survived = pushed & env.termination_manager.time_outs[env_ids]
    num_pushed, num_survived = torch.stack([pushed.sum(), survived.sum()]).tolist()
    state.pushed[env_ids] = False
    if num_pushed:
        decay = rate_decay ** num_pushed
        state.survived_sum = decay * state.survived_sum + num_survived
        state.pushed_sum = decay * state.pushed_sum + num_pushed
        state.level_survived += int(num_survived)
        state.level_pushed += int(num_pushed)
        if (
            state.level_pushed >= min_episodes
            and state.level_survived >= promote_rate * state.level_pushed
            and state.push_speed < max_speed
        ):
            state.push_speed = min(state.push_speed + speed_step, max_speed)
            state.level_survived = state.level_pushed = 0
    out = {"push_speed": torch.tensor(state.push_speed)}
    if state.pushed_sum > 0:
        out["push_survival_rate"] = torch.tensor(state.survived_sum / state.pushed_sum)
    return out
