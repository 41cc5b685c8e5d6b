"""Writes that never leave a half-written file: write a temp file beside the target, then rename.

The result has the permissions a plain `open(path, "w")` would give: an existing file keeps its
mode, a new one gets 0666 minus the umask (mkstemp's private 0600 would otherwise survive the
rename, and nobody else on a shared machine could read reports or metrics).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import torch


def current_umask() -> int:
    # The only portable way to read the umask is to set it; put it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_write_mode(path: Path) -> int:
    """Mode bits `open(path, "w")` would leave: the existing file's, else 0666 & ~umask."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def _atomic(path: str | Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = plain_write_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    return _atomic(path, lambda handle: torch.save(obj, handle))


def atomic_write_text(text: str, path: str | Path) -> Path:
    return _atomic(path, lambda handle: handle.write(text.encode()))


def atomic_write_bytes(data: bytes, path: str | Path) -> Path:
    return _atomic(path, lambda handle: handle.write(data))
