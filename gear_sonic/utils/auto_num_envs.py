"""`num_envs=auto`: the largest env count that fits the free memory of the training device.

Two probe envs (`probe_counts`, e.g. 16 and 64 envs) are built side by side, after a warm-up
build that pays the one-time costs (imports, compiled kernels), and the memory in use is read
before and after each: their difference gives the footprint per env and the fixed cost of an env. The rollout storage of the PPO update is added per env from the
observation sizes. The count is then (free * (1 - margin) - fixed) / per_env, capped by
`auto_num_envs.maximum`. Memory is read from CUDA (`torch.cuda.mem_get_info`) for a CUDA
device, else from the host (process RSS and available memory, psutil). When the probe cannot
measure (no reading, or the probes show no growth) it stops with an error: no silent guess.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch


class AutoNumEnvsError(ValueError):
    pass


@dataclass
class MemoryReading:
    used: int  # bytes this process (CPU) or the whole device (CUDA) holds
    free: int  # bytes still available


def read_memory(device: torch.device | str) -> MemoryReading:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        free, total = torch.cuda.mem_get_info(device)
        return MemoryReading(used=total - free, free=free)
    import psutil

    return MemoryReading(
        used=psutil.Process().memory_info().rss, free=psutil.virtual_memory().available
    )


def choose_num_envs(
    per_env_bytes: float, fixed_bytes: float, free_bytes: float, margin: float, maximum: int,
    multiple_of: int = 1,
) -> int:
    """The largest count (a multiple of `multiple_of`) whose footprint fits the budget."""
    budget = free_bytes * (1.0 - margin) - max(fixed_bytes, 0.0)
    count = min(int(budget // per_env_bytes), int(maximum))
    count -= count % max(multiple_of, 1)
    if count < max(multiple_of, 1):
        raise AutoNumEnvsError(
            f"num_envs=auto: not even {max(multiple_of, 1)} envs fit: {free_bytes / 2**20:.0f} MiB "
            f"free, margin {margin:.0%}, {per_env_bytes / 2**20:.2f} MiB per env and "
            f"{fixed_bytes / 2**20:.0f} MiB fixed; free memory or set num_envs to a number"
        )
    return count


def measure_footprint(
    build_env: Callable[[int], object],
    probe_counts: tuple[int, int],
    read: Callable[[], MemoryReading],
) -> tuple[float, float, int]:
    """Build a warm-up env, then two envs side by side -> (bytes per env, fixed bytes per env
    build, free bytes before the measured builds)."""
    small, large = sorted(int(n) for n in probe_counts)
    if small < 1 or small == large:
        raise AutoNumEnvsError(f"auto_num_envs.probe_counts must be two different counts >= 1, "
                               f"got {list(probe_counts)}")
    envs = []
    try:
        # A first build pays one-time costs (imports, compiled kernels, the robot model) that
        # would pass for a per-env cost; it stays alive so later builds cannot reuse its memory.
        envs.append(build_env(small))
        start = read()
        envs.append(build_env(small))
        after_small = read()
        envs.append(build_env(large))
        after_large = read()
    except Exception as err:
        raise AutoNumEnvsError(
            f"num_envs=auto: the memory probe failed ({type(err).__name__}: {err}); "
            "set num_envs to a number"
        ) from err
    finally:
        for env in envs:
            close = getattr(env, "close", None)
            if close is not None:
                close()
        del envs
        gc.collect()
    cost_small = after_small.used - start.used
    cost_large = after_large.used - after_small.used
    per_env = (cost_large - cost_small) / (large - small)
    if not (math.isfinite(per_env) and per_env > 0):
        raise AutoNumEnvsError(
            f"num_envs=auto: the probe could not measure a per-env footprint ({small} envs took "
            f"{cost_small} bytes, {large} envs {cost_large} bytes); set num_envs to a number"
        )
    return per_env, cost_small - small * per_env, start.free


def storage_bytes_per_env(obs_shapes: Mapping, num_actions: int, num_steps: int) -> int:
    """The PPO rollout (obs, actions and ~10 scalars a step), twice over for mini-batch copies."""

    def numel(shapes) -> int:
        if isinstance(shapes, Mapping):
            return sum(numel(s) for s in shapes.values())
        return math.prod([shapes] if isinstance(shapes, int) else [int(d) for d in shapes])

    return 2 * 4 * num_steps * (numel(obs_shapes) + int(num_actions) + 10)


def resolve_auto_num_envs(cfg, device, num_steps: int, multiple_of: int = 1) -> int:
    """Replace cfg.num_envs=auto by the measured count; prints the choice."""
    from omegaconf import open_dict

    from gear_sonic.envs import create_manager_env

    settings = cfg.get("auto_num_envs") or {}
    maximum = int(settings.get("maximum", 4096))
    margin = float(settings.get("margin", 0.2))
    probes = tuple(settings.get("probe_counts", (16, 64)))
    shapes: dict = {}

    def build(n: int):
        probe_cfg = cfg.copy()
        with open_dict(probe_cfg):
            probe_cfg.num_envs = int(n)
        env = create_manager_env(probe_cfg, device=device, seed=0)
        shapes.update(obs=env.observation_shapes, actions=env.num_actions)
        return env

    per_env, fixed, free = measure_footprint(build, probes, lambda: read_memory(device))
    per_env += storage_bytes_per_env(shapes["obs"], shapes["actions"], num_steps)
    count = choose_num_envs(per_env, fixed, free, margin, maximum, multiple_of)
    where = "GPU" if torch.device(device).type == "cuda" else "host"
    print(
        f"num_envs=auto: {count} envs ({per_env / 2**20:.2f} MiB each, {fixed / 2**20:.0f} MiB "
        f"fixed, {free / 2**30:.1f} GiB {where} memory free, margin {margin:.0%}, "
        f"maximum {maximum})",
        flush=True,
    )
    with open_dict(cfg):
        cfg.num_envs = count
    return count
