"""`sim.backend: native | warp | auto`: the one place where mjlab's env gets its simulation.

mjlab's `ManagerBasedRlEnv.__init__` builds `Simulation(...)` by the name it imported into
`mjlab.envs.manager_based_rl_env`; `simulation_backend` rebinds that name to `NativeSimulation`
for the duration of the env's construction only, so mjlab itself stays unforked.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from mjlab.envs import manager_based_rl_env

BACKENDS = ("native", "warp", "auto")


def resolve_backend(backend: str | None, device: str) -> str:
    """'native' or 'warp' for this device; `auto` picks native on CPU and warp on CUDA."""
    choice = "warp" if backend is None else str(backend).lower()
    if choice not in BACKENDS:
        raise ValueError(
            f"manager_env.config.sim.backend={backend!r}: expected one of {list(BACKENDS)}"
        )
    on_cpu = torch.device(device).type == "cpu"
    if choice == "auto":
        return "native" if on_cpu else "warp"
    if choice == "native" and not on_cpu:
        raise ValueError(
            "manager_env.config.sim.backend=native runs on CPU only, but the device is "
            f"{device!r}; "
            "use sim.backend=warp or auto on CUDA"
        )
    return choice


@contextmanager
def simulation_backend(
    backend: str | None, device: str, num_threads: int | None = None
) -> Iterator[str]:
    """Within this block, mjlab envs built on `device` use the chosen backend; yields its name."""
    choice = resolve_backend(backend, device)
    if choice == "warp":
        yield choice
        return
    from gear_sonic.sim.native import NativeSimulation

    original = manager_based_rl_env.Simulation
    manager_based_rl_env.Simulation = functools.partial(NativeSimulation, num_threads=num_threads)
    try:
        yield choice
    finally:
        manager_based_rl_env.Simulation = original
