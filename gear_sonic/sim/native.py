"""A CPU simulation backend for mjlab on MuJoCo's C engine: one MjData per world, in threads.

`NativeSimulation` offers the surface mjlab's managers use on its MJWarp `Simulation` (`data`,
`model`, `step`, `forward`, `reset`, `sense`, `expand_model_fields`, `get_default_field`,
`recompute_constants`, ...), so an unforked mjlab env runs on it (see `gear_sonic.sim.backend`).
Per-world MjModel copies exist only once domain randomisation expands a model field.
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

        self._models = [model] * num_envs
        self._datas = [mujoco.MjData(model) for _ in range(num_envs)]
        for data in self._datas:
            mujoco.mj_forward(model, data)
        self._pool = WorldPool(num_envs, resolve_num_threads(num_threads, num_envs))
        self._data = NativeData(model, self._datas)
        self._model = NativeModel(model, self._models)
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

    @property
    def world_models(self) -> list[mujoco.MjModel]:
        return self._models

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
        if self._models[0] is self._mj_model and self.num_envs > 1:
            self._push_writes()  # shared values written so far go into every copy
            self._models[:] = [copy.copy(self._mj_model) for _ in range(self.num_envs)]
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
        scratch = mujoco.MjData(self._mj_model)  # mj_setConst overwrites the data it is given
        for world in worlds:
            mujoco.mj_setConst(self._models[world], scratch)
        self._const_stale.clear()
        self._model.pull_worlds(worlds)

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
        self._pool.run(lambda lo, hi: self._data.copy_in(written, lo, hi))
        worlds = (
            range(self.num_envs)
            if env_ids is None
            else torch.as_tensor(env_ids).reshape(-1).tolist()
        )
        for world in worlds:
            mujoco.mj_resetData(self._models[world], self._datas[world])
        self._data.copy_out_worlds(list(worlds))

    def _run(self, mj_function) -> None:
        self._push_writes()
        written = self._data.take_written()
        models, datas, data = self._models, self._datas, self._data

        def chunk(lo: int, hi: int) -> None:
            data.copy_in(written, lo, hi)
            for world in range(lo, hi):
                mj_function(models[world], datas[world])
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
        for world in worlds:
            mujoco.mj_resetData(self._models[world], self._datas[world])
            mujoco.mj_forward(self._models[world], self._datas[world])
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
