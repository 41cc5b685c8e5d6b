"""The one place that saves, loads and checks checkpoints.

A checkpoint is a dict of tensors, numbers, strings and nested containers. Saves are atomic
(temp file + rename), so a crash leaves the previous file or the new one, never half of one.
The path may be a storage URL (s3://..., gear_sonic/storage.py): the whole file is uploaded in
one put, so a remote checkpoint too is whole or absent. Loads always use
`torch.load(weights_only=True)`: a file that holds any other object (which could run code while
unpickling) is refused, not executed.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gear_sonic import storage
from gear_sonic.utils.atomic_io import atomic_torch_save


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, unsafe, or of another architecture."""


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path | str:
    path = storage.location(path)
    if isinstance(path, Path):
        return atomic_torch_save(dict(state), path)
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    return storage.atomic_write_bytes(buffer.getvalue(), path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """-> the checkpoint dict. Only tensors and plain containers are unpickled."""
    path = storage.location(path)
    if not storage.is_file(path):
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    source = path if isinstance(path, Path) else io.BytesIO(storage.read_bytes(path))
    try:
        state = torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch names the refused global in its message; keep its first line only.
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"checkpoint {path}: refused to load: it holds objects other than tensors and plain "
            f"containers ({reason}). Only open checkpoints written by gear_sonic."
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(
            f"checkpoint {path}: unreadable ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}: expected a dict, found {type(state).__name__}")
    return state


def require_keys(state: Mapping, keys: tuple[str, ...], where: str | Path) -> None:
    missing = [key for key in keys if key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {where}: missing {missing} (it has {sorted(state)}): not a gear_sonic "
            "training checkpoint"
        )


def check_state_matches(
    own: Mapping[str, torch.Tensor], loaded: Mapping[str, Any], where: str
) -> None:
    """Raise CheckpointError naming the first parameter whose name or shape differs."""
    for key, tensor in own.items():
        if key in loaded and tuple(loaded[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{where}: parameter '{key}' has shape {tuple(loaded[key].shape)} in the checkpoint "
                f"but {tuple(tensor.shape)} in this model: the checkpoint was trained with another "
                "architecture"
            )
    missing = sorted(set(own) - set(loaded))
    unexpected = sorted(set(loaded) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: checkpoint does not match this model (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}): the checkpoint was trained with another architecture"
        )


def load_module_state(module: nn.Module, state: Mapping[str, Any], where: str) -> None:
    """Check names and shapes first (nothing is touched on a mismatch), then load."""
    check_state_matches(module.state_dict(), state, where)
    module.load_state_dict(state)
