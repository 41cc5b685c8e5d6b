"""`sim.data` of the native backend: every world's MjData fields as one batched torch tensor.

Each field mjlab touches gets a batched numpy array (world axis first, MJWarp's layout and dtype)
that torch sees zero-copy. Copies between that array and the worlds' MjData buffers happen only
around MuJoCo calls and only for fields that were accessed:
- into MjData: fields written through torch since the last call (their version counter moved);
- out of MjData: every accessed field MuJoCo can change (not the pure inputs such as ctrl).
One numpy call per (field, chunk of worlds) copies out; copying in is one assignment per world.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from gear_sonic.sim.errors import UnsupportedFieldError
from gear_sonic.sim.field_specs import FieldSpec, c_view, field_spec

# Fields MuJoCo reads but never writes during step/forward: no copy back after a step.
INPUT_ONLY_FIELDS = frozenset({"ctrl", "qfrc_applied", "xfrc_applied", "mocap_pos", "mocap_quat"})
_SCALAR_FIELDS = frozenset({"time"})  # Python floats on MjData, (nworld,) arrays in MJWarp


@dataclass
class _DataField:
    spec: FieldSpec
    batch: np.ndarray  # (nworld, *spec.shape)
    tensor: torch.Tensor  # torch view of batch
    views: list[np.ndarray] | None  # each world's MjData array as (1, *shape); None for scalars
    version: int  # tensor._version after our last copy; a newer one means torch wrote to it

    def copy_out(self, datas: list[mujoco.MjData], lo: int, hi: int) -> None:
        if self.views is None:
            self.batch[lo:hi] = [getattr(d, self.spec.name) for d in datas[lo:hi]]
        elif hi > lo:  # one C-level call per chunk (np.stack costs twice as much in Python)
            np.concatenate(self.views[lo:hi], axis=0, out=self.batch[lo:hi], casting="unsafe")

    def copy_out_world(self, datas: list[mujoco.MjData], world: int) -> None:
        if self.views is None:
            self.batch[world] = getattr(datas[world], self.spec.name)
        else:
            self.batch[world] = self.views[world][0]

    def copy_in(self, datas: list[mujoco.MjData], lo: int, hi: int) -> None:
        if self.views is None:
            for world in range(lo, hi):
                setattr(datas[world], self.spec.name, float(self.batch[world]))
        else:
            batch, views = self.batch, self.views
            for world in range(lo, hi):
                views[world][0] = batch[world]


class NativeData:
    """Attribute access like mjlab's `sim.data` (WarpBridge over mjwarp.Data), backed by MjData."""

    def __init__(self, mj_model: mujoco.MjModel, datas: list[mujoco.MjData]):
        object.__setattr__(self, "_mj_model", mj_model)
        object.__setattr__(self, "_datas", datas)
        object.__setattr__(self, "_fields", {})
        object.__setattr__(self, "_out_fields", [])

    @property
    def nworld(self) -> int:
        return len(self._datas)

    def __getattr__(self, name: str) -> torch.Tensor:
        field = self._fields.get(name)
        if field is None:
            field = self._track(name)
        return field.tensor

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(
            f"sim.data.{name} cannot be rebound; write in place: sim.data.{name}[:] = value"
        )

    def track(self, *names: str) -> None:
        """Start copying these fields now (they are otherwise tracked on first access)."""
        for name in names:
            getattr(self, name)

    def _track(self, name: str) -> _DataField:
        if name.startswith("_"):
            raise AttributeError(name)
        spec = field_spec("Data", name, self._mj_model)
        if spec is None or not spec.batched:
            raise UnsupportedFieldError("data", name)
        if name in _SCALAR_FIELDS:
            views = None
        else:
            views = [c_view(d, spec) for d in self._datas]
            if views and views[0] is None:
                raise UnsupportedFieldError("data", name)
            views = [view[None] for view in views]
        batch = np.zeros((len(self._datas), *spec.shape), dtype=spec.dtype)
        with torch.inference_mode(False):  # first access may come inside a rollout's inference mode
            tensor = torch.from_numpy(batch)  # an inference tensor would have no version counter
        field = _DataField(spec, batch, tensor, views, tensor._version)
        field.copy_out(self._datas, 0, len(self._datas))
        self._fields[name] = field
        if name not in INPUT_ONLY_FIELDS:
            self._out_fields.append(field)
        return field

    # Copies, called by NativeSimulation around MuJoCo calls.

    def take_written(self) -> list[_DataField]:
        """Fields written through torch since the last call; marks them clean."""
        written = []
        for field in self._fields.values():
            version = field.tensor._version
            if version != field.version:
                field.version = version
                written.append(field)
        return written

    def copy_in(self, fields: list[_DataField], lo: int, hi: int) -> None:
        for field in fields:
            field.copy_in(self._datas, lo, hi)

    def copy_out(self, lo: int, hi: int) -> None:
        for field in self._out_fields:
            field.copy_out(self._datas, lo, hi)

    def copy_out_worlds(self, worlds: list[int]) -> None:
        """After a reset: every field of these worlds, inputs included (MuJoCo zeroed them)."""
        for field in self._fields.values():
            for world in worlds:
                field.copy_out_world(self._datas, world)
