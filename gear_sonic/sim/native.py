"""A CPU simulation backend for mjlab on MuJoCo's C engine: one MjData per world, in threads.

`NativeSimulation` offers the surface mjlab's managers use on its MJWarp `Simulation` (`data`,
`model`, `step`, `forward`, `reset`, `sense`, `expand_model_fields`, `get_default_field`,
`recompute_constants`, ...), so an unforked mjlab env runs on it (see `gear_sonic.sim.backend`).
There is one MjModel per thread, not per world (see native_model.py).
"""

from __future__ import annotations

import copy
import logging

import mujoco
import numpy as np
import torch
from mjlab.sim.sim import SimulationCfg
from mjlab.utils.nan_guard import NanGuard

from gear_sonic.sim.errors import UnsupportedFeatureError
from gear_sonic.sim.native_data import NativeData
from gear_sonic.sim.native_model import NativeModel
from gear_sonic.sim.thread_pool import WorldPool, resolve_num_threads

log = logging.getLogger(__name__)
_MAX_ABS_STATE = 1e10  # MuJoCo's own bad-state threshold (mjMAXVAL)


class NativeSimulation:
    def __init__(
        self,
        num_envs: int,
        cfg: SimulationCfg,
        model: mujoco.MjModel | None = None,
        device: str = "cpu",
        *,
        spec: mujoco.MjSpec | None = None,
        variant_info: list | None = None,
        num_threads: int | None = None,
    ):
        if torch.device(device).type != "cpu":
            raise UnsupportedFeatureError(f"device {device!r} (the native backend runs on CPU)")
        if variant_info:
            raise UnsupportedFeatureError("mesh variants (per-world meshes)")
        if spec is not None:
            model = spec.compile()
        if model is None:
            raise ValueError("NativeSimulation needs a model or a spec")
        cfg.mujoco.apply(model)
        # Non-finite worlds are reset here (and logged), not silently by MuJoCo.
        model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_AUTORESET
        self.cfg = cfg
        self.device = "cpu"
        self.num_envs = num_envs
        self.use_cuda_graph = False
        self.step_graph = self.forward_graph = self.reset_graph = self.sense_graph = None
        self._mj_model = model
        self._mj_data = mujoco.MjData(model)
        mujoco.mj_forward(model, self._mj_data)

        self._datas = [mujoco.MjData(model) for _ in range(num_envs)]
        for data in self._datas:
            mujoco.mj_forward(model, data)
        self._pool = WorldPool(num_envs, resolve_num_threads(num_threads, num_envs))
        # Slots 0..threads-1 step worlds; the last one is the main thread's scratch (reset, setConst).
        self._models = [copy.copy(model) for _ in range(self._pool.num_threads + 1)]
        self._scratch_slot = len(self._models) - 1
        self._scratch_data = mujoco.MjData(model)
        self._data = NativeData(model, self._datas)
        self._model = NativeModel(model, self._models, num_envs)
        self._data.track("qpos", "qvel")  # the non-finite check reads them after every step
        self._default_model_fields: dict[str, torch.Tensor] = {}
        self._expanded_fields: set[str] = set()
        self._const_stale: set[int] = set()  # worlds whose model changed since mj_setConst
        self.nan_guard = NanGuard(cfg.nan_guard, num_envs, model)
        self.nonfinite_resets = 0

    # Properties mjlab reads.

    @property
    def num_threads(self) -> int:
        return self._pool.num_threads

    @property
    def mj_model(self) -> mujoco.MjModel:
        return self._mj_model

    @property
    def mj_data(self) -> mujoco.MjData:
        return self._mj_data

    @property
    def data(self) -> NativeData:
        return self._data

    @property
    def model(self) -> NativeModel:
        return self._model

    def world_model(self, world: int) -> mujoco.MjModel:
        """A copy of the MjModel world `world` runs with (for inspection; costs a model copy)."""
        self._push_writes()
        self._model.load_world(world, self._scratch_slot)
        return copy.copy(self._models[self._scratch_slot])

    @property
    def world_datas(self) -> list[mujoco.MjData]:
        return self._datas

    @property
    def wp_device(self):
        raise UnsupportedFeatureError(
            "sim.wp_device (MJWarp kernels, e.g. differential IK actions)"
        )

    @property
    def wp_model(self):
        raise UnsupportedFeatureError(
            "sim.wp_model (an MJWarp model, e.g. for differential IK actions)"
        )

    @property
    def wp_data(self):
        raise UnsupportedFeatureError("sim.wp_data (MJWarp data, e.g. for differential IK actions)")

    @property
    def default_model_fields(self) -> dict[str, torch.Tensor]:
        return self._default_model_fields

    @property
    def expanded_fields(self) -> set[str]:
        return self._expanded_fields

    @property
    def per_world_default_fields(self) -> set[str]:
        return set()  # only mesh variants have per-world defaults, and they are not supported

    @property
    def world_to_variant(self) -> dict[str, torch.Tensor]:
        return {}

    # Model fields.

    def expand_model_fields(self, fields: tuple[str, ...]) -> None:
        if not fields:
            return
        missing = [f for f in fields if not hasattr(self._mj_model, f.split(".")[0])]
        if missing:
            raise ValueError(f"Fields not found in model: {missing}")
        self._push_writes()  # shared values written so far stay the default of every world
        for name in fields:
            self._model.expand(name)
        self._expanded_fields.update(fields)

    def get_default_field(self, field: str) -> torch.Tensor:
        if field not in self._default_model_fields:
            if not hasattr(self._mj_model, field):
                raise ValueError(f"Field '{field}' not found in model")
            dtype = getattr(self._model, field).dtype
            self._default_model_fields[field] = torch.as_tensor(
                getattr(self._mj_model, field), dtype=dtype
            ).clone()
        return self._default_model_fields[field]

    def recompute_constants(self, level=None) -> None:
        """mj_setConst on each world whose model changed (covers MJWarp's set_const levels)."""
        self._push_writes()
        worlds = sorted(self._const_stale)
        if not worlds:
            return
        slot, model = self._scratch_slot, self._models[self._scratch_slot]
        for world in worlds:
            self._model.load_world(world, slot)
            mujoco.mj_setConst(model, self._scratch_data)  # overwrites the data it is given
            self._model.store_world(world, slot)
        self._const_stale.clear()

    def _push_writes(self) -> None:
        self._const_stale |= self._model.push_writes()

    # Physics.

    def step(self) -> None:
        with self.nan_guard.watch(self._data):
            self._run(mujoco.mj_step)
            self._reset_nonfinite_worlds()

    def forward(self) -> None:
        self._run(mujoco.mj_forward)

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        self._push_writes()
        written = self._data.take_written()
        self._pool.run(lambda lo, hi, slot: self._data.copy_in(written, lo, hi))
        worlds = (
            range(self.num_envs)
            if env_ids is None
            else torch.as_tensor(env_ids).reshape(-1).tolist()
        )
        self._reset_worlds(list(worlds), forward=False)

    def _run(self, mj_function) -> None:
        self._push_writes()
        written = self._data.take_written()
        models, datas, data, load_world = self._models, self._datas, self._data, None
        if self._model.has_per_world:
            load_world = self._model.load_world

        def chunk(lo: int, hi: int, slot: int) -> None:
            data.copy_in(written, lo, hi)
            model = models[slot]
            for world in range(lo, hi):
                if load_world is not None:
                    load_world(world, slot)
                mj_function(model, datas[world])
            data.copy_out(lo, hi)

        self._pool.run(chunk)

    def _reset_nonfinite_worlds(self) -> None:
        bad = np.zeros(self.num_envs, dtype=bool)
        for name in ("qpos", "qvel"):
            values = getattr(self._data, name).numpy()
            bad |= ~(np.abs(values) < _MAX_ABS_STATE).all(axis=1)  # NaN compares False
        if not bad.any():
            return
        worlds = np.flatnonzero(bad).tolist()
        self.nonfinite_resets += len(worlds)
        log.warning(
            "native sim: non-finite or exploding state in worlds %s; reset to the model default",
            worlds,
        )
        self._reset_worlds(worlds, forward=True)

    def _reset_worlds(self, worlds: list[int], forward: bool) -> None:
        slot, model = self._scratch_slot, self._models[self._scratch_slot]
        for world in worlds:
            self._model.load_world(world, slot)
            mujoco.mj_resetData(model, self._datas[world])
            if forward:
                mujoco.mj_forward(model, self._datas[world])
        self._data.copy_out_worlds(worlds)

    # Sensing and CUDA-graph hooks (no-ops on CPU).

    def set_sensor_context(self, ctx) -> None:
        present = {"camera": ctx.has_cameras, "raycast": bool(ctx.raycast_sensors)}
        kinds = [kind for kind, found in present.items() if found]
        raise UnsupportedFeatureError(f"{' and '.join(kinds) or 'camera/raycast'} sensors")

    def sense(self) -> None:
        return None

    def create_graph(self) -> None:
        return None

    def close(self) -> None:
        self._pool.close()
