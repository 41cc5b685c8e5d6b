"""`sim.model` of the native backend: MjModel fields as torch tensors, per world once expanded.

A field MJWarp batches over worlds is handed out as (nworld, ...): before expansion a stride-0
broadcast of one shared row (as MJWarp does; writing to it fails in torch, as it does on warp),
after `expand` one row per world backed by that world's own MjModel. Writes made through torch are
pushed into the MjModels before the next MuJoCo call; only the rows that changed are copied, and
those worlds are remembered for `mj_setConst`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    expanded: bool
    version: int
    shadow: np.ndarray | None = None  # expanded fields: the rows last written to the MjModels


class NativeModel:
    """Attribute access like mjlab's `sim.model` (WarpBridge over mjwarp.Model), on MjModels."""

    def __init__(
        self,
        base: mujoco.MjModel,
        models: list[mujoco.MjModel],
        owner: str = "Model",
        source: Callable[[mujoco.MjModel], object] = lambda model: model,
    ):
        object.__setattr__(self, "_base", base)
        object.__setattr__(self, "_models", models)  # one per world (the same object when shared)
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_source", source)
        object.__setattr__(self, "_fields", {})
        object.__setattr__(self, "_nested", {})

    @property
    def nworld(self) -> int:
        return len(self._models)

    def __getattr__(self, name: str):
        field = self._fields.get(name)
        if field is not None:
            return field.tensor
        if name.startswith("_"):
            raise AttributeError(name)
        if self._owner == "Model" and name in _NESTED:
            if name not in self._nested:
                owner, source = _NESTED[name]
                self._nested[name] = NativeModel(self._base, self._models, owner, source)
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
        if spec.batched:
            batch = value[None].copy()
            tensor = torch.from_numpy(batch).expand(self.nworld, *spec.shape)
        else:
            batch = value.copy()
            tensor = torch.from_numpy(batch)
        field = _ModelField(spec, batch, tensor, expanded=False, version=tensor._version)
        self._fields[spec.name] = field
        return field

    def expand(self, name: str) -> None:
        """Give field `name` one row per world (the per-world MjModels must exist already)."""
        if "." in name:
            head, rest = name.split(".", 1)
            getattr(self, head).expand(rest)
            return
        field = self._fields.get(name)
        if field is None:
            spec = field_spec(self._owner, name, self._base)
            if spec is None or not spec.batched:
                raise UnsupportedFieldError("model", name)
            field = self._track(spec)
        if field.expanded:
            return
        if not field.spec.batched:
            raise UnsupportedFieldError("model", f"{name} (per-world values)")
        batch = np.repeat(field.batch, self.nworld, axis=0)
        tensor = torch.from_numpy(batch)
        field.batch, field.tensor, field.expanded = batch, tensor, True
        field.version, field.shadow = tensor._version, batch.copy()

    def push_writes(self) -> set[int]:
        """Copy torch's writes since the last call into the MjModels; -> the worlds touched."""
        touched: set[int] = set()
        for field in self._fields.values():
            version = field.tensor._version
            if version == field.version:
                continue
            field.version = version
            if field.expanded:
                rows = (field.batch != field.shadow).reshape(self.nworld, -1).any(axis=1)
                for world in np.flatnonzero(rows).tolist():
                    self._write(self._models[world], field.spec, field.batch[world])
                    touched.add(world)
                field.shadow[rows] = field.batch[rows]
            else:
                row = field.batch[0] if field.spec.batched else field.batch
                for model in {id(m): m for m in self._models}.values():
                    self._write(model, field.spec, row)
                touched.update(range(self.nworld))
        for nested in self._nested.values():
            touched |= nested.push_writes()
        return touched

    def pull_worlds(self, worlds: list[int]) -> None:
        """Refresh expanded rows of these worlds from their MjModels (after mj_setConst)."""
        for field in self._fields.values():
            if field.expanded:
                for world in worlds:
                    field.batch[world] = self._read(self._models[world], field.spec)
                field.shadow[worlds] = field.batch[worlds]
        for nested in self._nested.values():
            nested.pull_worlds(worlds)

    def expanded_names(self) -> set[str]:
        names = {name for name, field in self._fields.items() if field.expanded}
        for prefix, nested in self._nested.items():
            names |= {f"{prefix}.{name}" for name in nested.expanded_names()}
        return names
