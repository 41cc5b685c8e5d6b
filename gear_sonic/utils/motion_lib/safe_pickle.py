"""Open motion PKLs without running code from them.

A pickle names the callables that rebuild its objects, so `joblib.load` on a stranger's file can
run anything (`os.system`, ...). Motion files only hold numpy arrays inside dicts, lists and
tuples, so `load_motion_pickle` unpickles through an allow-list: numpy's array and dtype
rebuilders, joblib's array wrapper (whose raw bytes follow the pickle stream) and a few
builtins. Any other global is refused before it is called, with one line naming the file and
the refused `module.qualname`.

`trust_pickle=True` (config `trust_pickle=true`, data tools `--trust-pickle`) is the opt-out:
plain `joblib.load`, for files whose origin the user knows.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import importlib
import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler
from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

from .errors import MotionDataError

TRUST_FIX = (
    "if you know where the file comes from, pass --trust-pickle to the data tools or set "
    "trust_pickle=true (e.g. manager_env.commands.motion.trust_pickle=true); otherwise re-export "
    "it as plain arrays (convert_motions.py on a trusted machine)"
)

TRUST_PICKLE_HELP = (
    "unpickle PKL files without the allow-list; this runs any code the file names, so use it "
    "only for files whose origin you trust"
)


class UntrustedPickleError(MotionDataError):
    """The PKL names a global that motion data never needs."""


def _numpy_core(submodule: str):
    # numpy >= 2 keeps these in numpy._core; numpy 1.x in numpy.core.
    try:
        return importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # pragma: no cover - numpy 1.x
        return importlib.import_module(f"numpy.core.{submodule}")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Protocol-2 pickles store bytes as _codecs.encode(str, 'latin1'); nothing else is needed."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    multiarray, numeric = _numpy_core("multiarray"), _numpy_core("numeric")
    helpers = {
        "_reconstruct": multiarray._reconstruct,  # ndarray.__reduce__ (protocol <= 4)
        "scalar": multiarray.scalar,  # numpy scalars (np.float64(30.0) as fps)
    }
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("joblib.numpy_pickle", "NumpyArrayWrapper"): NumpyArrayWrapper,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _latin1_encode,
    }
    # Files written under numpy 1.x name numpy.core, under numpy 2.x numpy._core.
    for package in ("numpy.core", "numpy._core"):
        for name, func in helpers.items():
            allowed[(f"{package}.multiarray", name)] = func
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5
    for name in ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray",
                 "int", "float", "complex", "bool"):
        for module in ("builtins", "__builtin__"):  # __builtin__: protocol-2 files from py2
            allowed[(module, name)] = getattr(builtins, name)
    return allowed


_ALLOWED = _allowed_globals()


class _RestrictedUnpickler(NumpyUnpickler):
    """joblib's unpickler (it reads the array bytes that follow each NumpyArrayWrapper), with
    every global resolved from the allow-list instead of imported."""

    dispatch = NumpyUnpickler.dispatch.copy()

    def load_build(self) -> None:
        state, wrapper = self.stack[-1], self.stack[-2]
        dtype = state.get("dtype") if isinstance(state, dict) else None
        if not (isinstance(wrapper, NumpyArrayWrapper) and isinstance(dtype, np.dtype)
                and dtype.hasobject):
            return NumpyUnpickler.load_build(self)
        # An object array is a nested pickle after the wrapper; joblib < 1.5 reads it with a
        # plain pickle.load, so read it here through the same allow-list.
        pickle._Unpickler.load_build(self)
        inner = pickle._Unpickler(self.file_handle)
        inner.find_class = self.find_class
        self.stack[-1] = inner.load()

    dispatch[pickle.BUILD[0]] = load_build

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UntrustedPickleError(
                f"refused to unpickle '{module}.{name}': motion files hold only numpy arrays, "
                "dicts, lists, strings and numbers, and opening this one could run its code",
                source=self.filename, fix=TRUST_FIX,
            ) from None


def load_motion_pickle(path: str | Path, trust_pickle: bool = False) -> Any:
    """Load a (joblib, possibly compressed) pickle; with `trust_pickle=False` only motion data."""
    path = str(path)
    if trust_pickle:
        return joblib.load(path)
    with open(path, "rb") as raw:
        # Detects zlib / gzip / bz2 / lzma / xz / lz4 compression the way joblib.load does.
        with _validate_fileobject_and_memmap(raw, path) as (fileobj, _):
            if isinstance(fileobj, str):
                raise UntrustedPickleError(
                    "is in the pre-0.10 joblib format, which stores arrays in side files and "
                    "cannot be opened safely", source=path, fix=TRUST_FIX,
                )
            return _RestrictedUnpickler(path, fileobj, ensure_native_byte_order=True).load()

