"""Builders shared by training and evaluation, so an evaluated model is the trained model."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from gear_sonic.checkpoint import check_state_matches, load_checkpoint, require_keys
from gear_sonic.trl.trainer.ppo_config import PPOConfig


def ppo_config(cfg: DictConfig) -> PPOConfig:
    """Validated PPO parameters; a misspelled override fails here, before the env starts."""
    if "algo" not in cfg:
        raise ValueError("config has no `algo` section: compose an experiment preset (+exp=...)")
    return PPOConfig.from_mapping(cfg.algo.config, key_prefix="algo.config")


def build_policy_and_value(cfg: DictConfig, obs_shapes: dict, num_actions: int):
    models = cfg.get("actor_critic") or {}
    for key in ("actor", "critic"):
        if key not in models:
            raise ValueError(
                f"actor_critic.{key} is missing: add an actor_critic preset to the experiment"
            )
    actor = instantiate(
        models.actor,
        backbone={"obs_shapes": obs_shapes, "num_actions": num_actions},
        num_actions=num_actions,
    )
    critic = instantiate(models.critic, obs_shapes=obs_shapes)
    return actor, critic


def load_weights(actor, critic, path: str | Path) -> None:
    """Policy and value weights from a checkpoint (a new experiment starting from them)."""
    state = load_checkpoint(path)
    require_keys(state, ("actor", "critic"), path)
    for name, module in (("actor", actor), ("critic", critic)):
        check_state_matches(module.state_dict(), state[name], f"{path}: {name}")
    for name, module in (("actor", actor), ("critic", critic)):
        module.load_state_dict(state[name])
