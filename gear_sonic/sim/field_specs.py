"""Per-world shapes and dtypes of mjlab's sim fields, read from MJWarp's own type annotations.

mjlab's managers see `sim.data.<field>` / `sim.model.<field>` as MJWarp lays them out (float32,
vector types unrolled into trailing axes, a leading world axis on batched fields). The native
backend must hand out tensors of the same shape and dtype, so the layout is taken from
`mujoco_warp`'s dataclass annotations rather than written down a second time here.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import mujoco
import numpy as np
import warp as wp
from mujoco_warp._src import types as mjw_types

_WORLD_DIMS = ("*", "nworld")
_SCALAR_DTYPES = {
    wp.float32: np.float32,
    wp.float64: np.float64,
    wp.int32: np.int32,
    wp.int8: np.int8,
    wp.uint8: np.uint8,
    wp.bool: np.bool_,
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    batched: bool  # has a leading world axis in MJWarp
    shape: tuple[int, ...]  # per-world shape (without the world axis)
    dtype: type


@functools.cache
def _annotations(cls: type) -> dict[str, object]:
    return {f.name: f.type for f in dataclasses.fields(cls)}


def _numpy_dtype(wp_dtype) -> type:
    scalar = getattr(wp_dtype, "_wp_scalar_type_", wp_dtype)
    if scalar not in _SCALAR_DTYPES:
        raise TypeError(f"no numpy dtype for warp type {wp_dtype}")
    return _SCALAR_DTYPES[scalar]


def field_spec(owner: str, name: str, mj_model: mujoco.MjModel) -> FieldSpec | None:
    """Layout of MJWarp's `owner` ('Model', 'Data', 'Option') field `name`; None if no array."""
    annotation = _annotations(getattr(mjw_types, owner)).get(name)
    dims = getattr(annotation, "shape", None)
    if annotation is None or dims is None or not hasattr(annotation, "dtype"):
        return None
    batched = bool(dims) and dims[0] in _WORLD_DIMS
    shape = []
    for dim in dims[1:] if batched else dims:
        size = dim if isinstance(dim, int) else getattr(mj_model, dim, None)
        if not isinstance(size, int):
            return None  # a size only MJWarp knows (padding, njmax): not a C-side field
        shape.append(size)
    shape.extend(getattr(annotation.dtype, "_shape_", ()))
    return FieldSpec(name, batched, tuple(shape), _numpy_dtype(annotation.dtype))


def c_view(source: object, spec: FieldSpec) -> np.ndarray | None:
    """MuJoCo C's array for `spec` on an MjModel/MjData/MjOption, reshaped to MJWarp's layout."""
    value = getattr(source, spec.name, None)
    if not isinstance(value, np.ndarray) or value.size != int(np.prod(spec.shape, dtype=np.int64)):
        return None
    return value.reshape(spec.shape)
