"""Where an evaluation's outputs go: one folder per checkpoint step and per what was evaluated.

    <exp_dir>/eval/step_000060/                       the default evaluation (what the checkpoint
                                                      monitor makes): the encoders as trained, the
                                                      training motion set, every clip
    <exp_dir>/eval/step_000060/enc-teleop/            ++use_encoder=teleop
    <exp_dir>/eval/step_000060/motions-walks-1a2b3c4d/  ++motion_file=<another set>
    <exp_dir>/eval/step_000060/enc-smpl+run_once/     several differences join with "+"
    <exp_dir>/eval/step_000060/sweep-1a2b3c4d/        locomotion: ++eval_commands and/or
                                                      ++eval_duration_s given on the command line

A motion set is named by its file or folder name and 8 hex digits of a hash of its file list
(relative names and sizes), so two sets with the same folder name get two folders.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from gear_sonic.utils.safe_names import safe_filename

REPO_ROOT = Path(__file__).resolve().parents[2]
MOTION_SUFFIXES = (".pkl", ".npz")


def resolve_motion_path(path: str | Path) -> Path:
    """The path as the env builder finds it: relative to the working directory, else the repo."""
    path = Path(path)
    for candidate in (path, REPO_ROOT / path):
        if candidate.exists():
            return candidate.resolve()
    return path.resolve()


def motion_set_id(path: str | Path) -> str:
    """`<name>-<hash8>` of a motion file or folder."""
    path = resolve_motion_path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in MOTION_SUFFIXES and p.is_file())
        listing = [(p.relative_to(path).as_posix(), p.stat().st_size) for p in files]
    else:
        listing = [(path.name, path.stat().st_size if path.exists() else -1)]
    digest = hashlib.sha1(repr(listing).encode()).hexdigest()[:8]
    name = path.stem if path.is_file() else path.name
    return f"{safe_filename(name, max_length=40)}-{digest}"


def sweep_id(sweep: Mapping) -> str:
    """8 hex digits of a locomotion sweep given on the command line (commands, duration)."""
    return hashlib.sha1(json.dumps(dict(sweep), sort_keys=True).encode()).hexdigest()[:8]


def evaluation_name(use_encoder: str | None = None, motion_file: str | Path | None = None,
                    train_motion_file: str | Path | None = None, run_once: bool = False,
                    sweep: Mapping | None = None) -> str:
    """"" for the default evaluation, else the sub-folder name that says what differs."""
    parts = []
    if use_encoder:
        parts.append(f"enc-{safe_filename(use_encoder)}")
    other_set = motion_file and (
        train_motion_file is None
        or resolve_motion_path(motion_file) != resolve_motion_path(train_motion_file))
    if other_set:
        parts.append(f"motions-{motion_set_id(motion_file)}")
    if run_once:
        parts.append("run_once")
    if sweep:
        parts.append(f"sweep-{sweep_id(sweep)}")
    return "+".join(parts)


def step_dir(exp_dir: str | Path, step: int) -> Path:
    return Path(exp_dir) / "eval" / f"step_{int(step):06d}"


def evaluation_dir(exp_dir: str | Path, step: int, name: str = "") -> Path:
    base = step_dir(exp_dir, step)
    return base / name if name else base


def evaluation_label(step: int, name: str = "") -> str:
    return f"step {int(step)}" + (f" · {name}" if name else "")
