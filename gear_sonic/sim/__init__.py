"""Simulation backends for mjlab's manager env: MJWarp (mjlab's own) or MuJoCo C (`native`)."""

from gear_sonic.sim.backend import resolve_backend, simulation_backend

__all__ = ["resolve_backend", "simulation_backend"]
