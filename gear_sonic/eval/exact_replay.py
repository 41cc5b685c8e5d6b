"""The exact-replay settings (config/eval_overrides/exact_replay.yaml) applied to a config.

    cfg = apply_exact_replay(cfg)                 # evaluation: train-only events dropped
    cfg = apply_exact_replay(cfg, events="none")  # PD replay, tests: no randomisation at all

Works on a composed config and on a run's saved config.yaml alike (a saved config has no config
groups left, so group content is loaded from its file here). Returns a copy.
"""

from __future__ import annotations

import copy
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
EXACT_REPLAY = CONFIG_DIR / "eval_overrides" / "exact_replay.yaml"
EVENT_MODES = ("eval", "none")


def load_exact_replay() -> DictConfig:
    return OmegaConf.load(EXACT_REPLAY)


def apply_exact_replay(cfg: DictConfig, events: str | None = None) -> DictConfig:
    """A copy of `cfg` with exact_replay.yaml applied; `events` overrides the file's choice."""
    spec = load_exact_replay()
    events = str(events or spec.events)
    if events not in EVENT_MODES:
        raise ValueError(f"exact replay events={events!r}: choose one of {list(EVENT_MODES)}")
    cfg = copy.deepcopy(cfg)
    OmegaConf.set_struct(cfg, False)
    for key, value in {**spec.reset, **spec.playback}.items():
        OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    for group, option in spec.groups.items():
        path = CONFIG_DIR / group / f"{option}.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"{EXACT_REPLAY}: groups.{group}={option}: no file {path}")
        OmegaConf.update(cfg, group.replace("/", "."), OmegaConf.load(path), merge=False)
    manager_events = cfg.manager_env.get("events") or {}
    if events == "none":
        cfg.manager_env.events = {}
    else:
        cfg.manager_env.events = {name: term for name, term in manager_events.items()
                                  if not term.get("train_only", False)}
    return cfg


def exact_reset_overrides() -> list[str]:
    """Hydra overrides for env tests that keep the training terminations and episode length but
    need the reference placed exactly on the robot: the `reset` part of the file, no events."""
    spec = load_exact_replay()
    return [*(f"{k}={_hydra_value(v)}" for k, v in spec.reset.items()), "manager_env/events=none"]


def _hydra_value(value) -> str:
    if value is None:
        return "null"
    if OmegaConf.is_list(value):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    return str(value)
