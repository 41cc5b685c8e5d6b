"""Builders shared by training and evaluation, so an evaluated model is the trained model."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from gear_sonic.trl.trainer.ppo_config import PPOConfig

# Keys of algo.config that are not PPO hyper-parameters.
_MODEL_KEYS = ("actor", "critic")


def ppo_config(cfg: DictConfig) -> PPOConfig:
    """Validated PPO parameters; a misspelled override fails here, before the env starts."""
    if "algo" not in cfg:
        raise ValueError("config has no `algo` section: compose an experiment preset (+exp=...)")
    mapping = {k: v for k, v in cfg.algo.config.items() if k not in _MODEL_KEYS}
    return PPOConfig.from_mapping(mapping, key_prefix="algo.config")


def build_policy_and_value(cfg: DictConfig, obs_shapes: dict, num_actions: int):
    algo = cfg.algo.config
    for key in _MODEL_KEYS:
        if key not in algo:
            raise ValueError(f"algo.config.{key} is missing: add an actor_critic preset to the experiment")
    actor = instantiate(algo.actor, backbone={"obs_shapes": obs_shapes, "num_actions": num_actions},
                        num_actions=num_actions)
    critic = instantiate(algo.critic, obs_shapes=obs_shapes)
    return actor, critic


def load_weights(actor, critic, path: str | Path) -> None:
    """Policy and value weights from a checkpoint (a new experiment starting from them)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"+checkpoint={path}: no such file")
    state = torch.load(path, map_location="cpu", weights_only=False)
    for name, module in (("actor", actor), ("critic", critic)):
        if name not in state:
            raise ValueError(f"+checkpoint={path}: the file has no '{name}' weights (keys: {sorted(state)})")
        load_matching_state(module, state[name], f"{path}: {name}")


def load_matching_state(module: torch.nn.Module, state: dict, where: str) -> None:
    """load_state_dict with a message that names the parameter and both shapes on a mismatch."""
    own = module.state_dict()
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise ValueError(
                f"{where}: parameter '{key}' has shape {tuple(value.shape)} in the checkpoint but "
                f"{tuple(own[key].shape)} in this model: the checkpoint was trained with another architecture"
            )
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{where}: checkpoint does not match this model (missing {missing[:5]}, unexpected {unexpected[:5]})")
    module.load_state_dict(state)
