"""`sim.model` of the native backend: MjModel fields as torch tensors, per world once expanded.

A field MJWarp batches over worlds is handed out as (nworld, ...): before expansion a stride-0
broadcast of one shared row (as MJWarp does; writing to it fails in torch, as it does on warp),
after `expand` one row per world. A G1 MjModel holds ~70 MB of meshes, so there is no MjModel per
world: each thread steps with its own MjModel, into which the expanded fields of the world it is
about to step are copied first (`load_world`; float64 values kept per world). Writes made through
torch reach those per-world values before the next MuJoCo call; only rows that changed are copied,
and those worlds are remembered for `mj_setConst`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np
import torch

from gear_sonic.sim.errors import UnsupportedFieldError
from gear_sonic.sim.field_specs import FieldSpec, c_view, field_spec

_NESTED = {"opt": ("Option", lambda model: model.opt)}


@dataclass
class _ModelField:
    spec: FieldSpec
    batch: np.ndarray  # (nworld, ...) when expanded, (1, ...) shared batched, (...) unbatched
    tensor: torch.Tensor
    version: int
    expanded: bool = False
    shadow: np.ndarray | None = None  # expanded: the float32 rows last copied to world_values
    world_values: np.ndarray | None = None  # expanded: float64 (nworld, ...) in MuJoCo's precision
    model_views: list[np.ndarray] = field(default_factory=list)  # expanded: one per MjModel


class NativeModel:
    """Attribute access like mjlab's `sim.model` (WarpBridge over mjwarp.Model), on MjModels."""

    def __init__(
        self,
        base: mujoco.MjModel,
        models: list[mujoco.MjModel],
        nworld: int,
        owner: str = "Model",
        source: Callable[[mujoco.MjModel], object] = lambda model: model,
    ):
        object.__setattr__(self, "_base", base)  # the compiled template; never written
        object.__setattr__(self, "_models", models)  # the MjModels MuJoCo runs with (per thread)
        object.__setattr__(self, "_nworld", nworld)
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_fields", {})
        object.__setattr__(self, "_nested", {})
        object.__setattr__(self, "_per_world", [])  # expanded fields, here and nested

    @property
    def nworld(self) -> int:
        return self._nworld

    def __getattr__(self, name: str):
        found = self._fields.get(name)
        if found is not None:
            return found.tensor
        if name.startswith("_"):
            raise AttributeError(name)
        if self._owner == "Model" and name in _NESTED:
            if name not in self._nested:
                owner, source = _NESTED[name]
                nested = NativeModel(self._base, self._models, self._nworld, owner, source)
                self._nested[name] = nested
            return self._nested[name]
        spec = field_spec(self._owner, name, self._base)
        if spec is None:
            value = getattr(self._source(self._base), name, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value  # sizes (nbody, nq, ...) and scalar options
            raise UnsupportedFieldError("model", name)
        return self._track(spec).tensor

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(
            f"sim.model.{name} cannot be rebound; write in place: sim.model.{name}[:] = value"
        )

    def _read(self, model: mujoco.MjModel, spec: FieldSpec) -> np.ndarray:
        source = self._source(model)
        view = c_view(source, spec)
        if view is None:
            value = getattr(source, spec.name, None)
            if isinstance(value, (int, float)) and spec.shape == ():
                return np.asarray(value)
            raise UnsupportedFieldError("model", spec.name)
        return view

    def _write(self, model: mujoco.MjModel, spec: FieldSpec, row: np.ndarray) -> None:
        source = self._source(model)
        if spec.shape == () and not isinstance(getattr(source, spec.name), np.ndarray):
            setattr(source, spec.name, row.item())
        else:
            c_view(source, spec)[...] = row

    def _track(self, spec: FieldSpec) -> _ModelField:
        value = self._read(self._base, spec).astype(spec.dtype)
        with torch.inference_mode(False):  # a version counter even when first read in inference mode
            if spec.batched:
                batch = value[None].copy()
                tensor = torch.from_numpy(batch).expand(self._nworld, *spec.shape)
            else:
                batch = value.copy()
                tensor = torch.from_numpy(batch)
        tracked = _ModelField(spec, batch, tensor, version=tensor._version)
        self._fields[spec.name] = tracked
        return tracked

    def expand(self, name: str) -> None:
        """Give field `name` one row per world."""
        if "." in name:
            head, rest = name.split(".", 1)
            nested = getattr(self, head)
            nested.expand(rest)
            self._per_world[:] = self._collect_per_world()
            return
        tracked = self._fields.get(name)
        if tracked is None:
            spec = field_spec(self._owner, name, self._base)
            if spec is None or not spec.batched:
                raise UnsupportedFieldError("model", name)
            tracked = self._track(spec)
        if tracked.expanded:
            return
        views = [c_view(self._source(model), tracked.spec) for model in self._models]
        if not tracked.spec.batched or any(view is None for view in views):
            raise UnsupportedFieldError("model", f"{name} (per-world values)")
        batch = np.repeat(tracked.batch, self._nworld, axis=0)
        with torch.inference_mode(False):
            tensor = torch.from_numpy(batch)
        tracked.batch, tracked.tensor, tracked.version = batch, tensor, tensor._version
        tracked.expanded, tracked.shadow, tracked.model_views = True, batch.copy(), views
        template = self._read(self._base, tracked.spec)
        tracked.world_values = np.repeat(template[None], self._nworld, axis=0)
        self._per_world[:] = self._collect_per_world()

    def _collect_per_world(self) -> list[_ModelField]:
        fields = [f for f in self._fields.values() if f.expanded]
        for nested in self._nested.values():
            fields += nested._collect_per_world()
        return fields

    @property
    def has_per_world(self) -> bool:
        return bool(self._per_world)

    def load_world(self, world: int, slot: int) -> None:
        """Copy world `world`'s expanded fields into MjModel `slot` before MuJoCo runs it."""
        for expanded in self._per_world:
            expanded.model_views[slot][...] = expanded.world_values[world]

    def push_writes(self) -> set[int]:
        """Take torch's writes since the last call into the MjModels; -> the worlds touched."""
        touched: set[int] = set()
        for tracked in self._fields.values():
            version = tracked.tensor._version
            if version == tracked.version:
                continue
            tracked.version = version
            if tracked.expanded:
                rows = (tracked.batch != tracked.shadow).reshape(self._nworld, -1).any(axis=1)
                tracked.world_values[rows] = tracked.batch[rows]
                tracked.shadow[rows] = tracked.batch[rows]
                touched.update(np.flatnonzero(rows).tolist())
            else:
                row = tracked.batch[0] if tracked.spec.batched else tracked.batch
                for model in self._models:
                    self._write(model, tracked.spec, row)
                touched.update(range(self._nworld))
        for nested in self._nested.values():
            touched |= nested.push_writes()
        return touched

    def store_world(self, world: int, slot: int) -> None:
        """Keep MjModel `slot`'s expanded fields as world `world`'s (after mj_setConst there)."""
        for expanded in self._per_world:
            expanded.world_values[world] = expanded.model_views[slot]
            expanded.batch[world] = expanded.model_views[slot]
            expanded.shadow[world] = expanded.batch[world]

    def expanded_names(self) -> set[str]:
        names = {name for name, tracked in self._fields.items() if tracked.expanded}
        for prefix, nested in self._nested.items():
            names |= {f"{prefix}.{name}" for name in nested.expanded_names()}
        return names
