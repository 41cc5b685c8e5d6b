"""YAML term entries -> mjlab term configs, with errors that name the YAML key.

A term is written as `{func: <name>, params: {...}, ...}`. Names are looked up in our `mdp`
modules first, then in mjlab's stock terms; `dr.<name>` names mjlab's domain randomisation, and a
dotted path (`package.module.name`) a term that lives elsewhere (e.g. the BC teachers).
Params are checked against the function signature before mjlab ever sees them.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import mjlab.envs.mdp as mjlab_mdp
from mjlab.envs.mdp import dr as mjlab_dr
from mjlab.managers.scene_entity_config import SceneEntityCfg
from mjlab.utils.noise import GaussianNoiseCfg, UniformNoiseCfg

from gear_sonic.envs.manager_env.mdp import (
    events,
    metrics,
    observations,
    rewards,
    terminations,
)

SEARCH_MODULES: dict[str, tuple[ModuleType, ...]] = {
    "observations": (observations, mjlab_mdp),
    "rewards": (rewards, mjlab_mdp),
    "terminations": (terminations, mjlab_mdp),
    "events": (events, mjlab_mdp),
    "metrics": (metrics, mjlab_mdp),
    "curriculum": (mjlab_mdp,),
}
_SKIPPED_ARGS = {"env", "env_ids", "self"}
_SIMPLE_TYPES = {"float": (int, float), "int": (int,), "bool": (bool,), "str": (str,)}


class EnvConfigError(ValueError):
    """A manager_env YAML entry that cannot be turned into an mjlab config."""


def resolve_function(name: Any, kind: str, key: str) -> Callable:
    if not isinstance(name, str) or not name:
        raise EnvConfigError(f"{key}.func must be a function name, got {name!r}")
    if name.startswith("dr."):
        modules, attr = (mjlab_dr,), name[3:]
    elif "." in name:
        module_name, _, attr = name.rpartition(".")
        try:
            modules = (importlib.import_module(module_name),)
        except ImportError as err:
            raise EnvConfigError(f"{key}.func: cannot import {module_name!r} ({err})") from None
    else:
        modules, attr = SEARCH_MODULES[kind], name
    for module in modules:
        func = getattr(module, attr, None)
        if callable(func) and not attr.startswith("_"):
            return func
    searched = ", ".join(m.__name__ for m in modules)
    raise EnvConfigError(
        f"{key}.func: unknown {kind} term function {name!r} (searched {searched}); "
        "check the spelling or add the function to gear_sonic/envs/manager_env/mdp/"
    )


def _signature(func: Callable) -> inspect.Signature:
    target = func.__call__ if inspect.isclass(func) else func
    return inspect.signature(target)


def check_params(func: Callable, params: dict, key: str) -> None:
    sig = _signature(func)
    accepted = {n: p for n, p in sig.parameters.items() if n not in _SKIPPED_ARGS and p.kind != p.VAR_KEYWORD}
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    for name, value in params.items():
        if name not in accepted:
            if takes_kwargs:
                continue
            raise EnvConfigError(
                f"{key}.params.{name}: {getattr(func, '__name__', func)} has no parameter {name!r}; "
                f"valid parameters: {sorted(accepted)}"
            )
        _check_type(accepted[name], value, f"{key}.params.{name}")
    for name, param in accepted.items():
        if param.default is inspect.Parameter.empty and param.kind != param.VAR_POSITIONAL and name not in params:
            raise EnvConfigError(f"{key}.params.{name} is required by {getattr(func, '__name__', func)} but missing")


def _check_type(param: inspect.Parameter, value: Any, key: str) -> None:
    annotation = param.annotation
    name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    expected = _SIMPLE_TYPES.get(name)
    if expected is None or value is None:
        return
    if isinstance(value, bool) and name in ("float", "int"):
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise EnvConfigError(f"{key}: expected {name}, got {type(value).__name__} {value!r}")


def convert_params(params: dict, key: str) -> dict:
    """YAML values -> what mjlab expects: tuples for lists, SceneEntityCfg for `*asset_cfg`."""
    out = {}
    for name, value in params.items():
        if name.endswith("asset_cfg") and isinstance(value, dict):
            out[name] = scene_entity_cfg(value, f"{key}.{name}")
        else:
            out[name] = to_tuples(value)
    return out


def scene_entity_cfg(value: dict, key: str) -> SceneEntityCfg:
    if "name" not in value:
        raise EnvConfigError(f"{key}.name is required (the scene entity, e.g. robot)")
    try:
        return SceneEntityCfg(**to_tuples(value))
    except TypeError as err:
        raise EnvConfigError(f"{key}: {err}") from None


def to_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(to_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: to_tuples(v) for k, v in value.items()}
    return value


def noise_cfg(value: dict | None, key: str):
    if value is None:
        return None
    value = dict(value)
    kind = value.pop("type", "uniform")
    if kind == "uniform":
        return UniformNoiseCfg(**value)
    if kind == "gaussian":
        return GaussianNoiseCfg(**value)
    raise EnvConfigError(f"{key}.type: unknown noise type {kind!r}; use uniform or gaussian")


def split_entry(entry: Any, allowed: set[str], key: str) -> dict:
    """Check an entry is a mapping with a func and only known keys."""
    if not isinstance(entry, dict):
        raise EnvConfigError(f"{key} must be a mapping with at least `func`, got {entry!r}")
    unknown = set(entry) - allowed
    if unknown:
        raise EnvConfigError(f"{key}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    if "func" not in entry:
        raise EnvConfigError(f"{key}.func is missing")
    return entry
