"""The experiment dir's bookkeeping: a dir no other run shares, config.yaml, meta.yaml.

meta.yaml holds the W&B run id, `max_train_steps` (the run's planned total iterations, which the
checkpoint monitor reads to know when a run is over) and one entry per launch (command, time,
iteration at start, processes), updated on every resume.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import sys
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gear_sonic.utils.atomic_io import atomic_write_text

MAX_SUFFIX_TRIES = 1000
# Override keys that say nothing about a sweep point (paths, the preset itself).
NAME_EXCLUDED_KEYS = ("exp", "experiment_dir", "base_dir", "experiment_name", "project_name")


def claim_new_dir(path: str | Path) -> Path:
    """Create `path` exclusively; if another run holds it, `path-1`, `path-2`, ... instead."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(MAX_SUFFIX_TRIES):
        candidate = path if attempt == 0 else path.with_name(f"{path.name}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"experiment_dir={path}: {MAX_SUFFIX_TRIES} runs already use this name")


def sweep_dir_suffix(job_num: int, task_overrides: list[str], max_len: int = 60) -> str:
    """`job3_seed=1,lr=3e-4`: the job number and the swept overrides, short and path-safe."""
    items = []
    for item in sorted(task_overrides):
        key = item.split("=", 1)[0].lstrip("+~")
        if key in NAME_EXCLUDED_KEYS:
            continue
        items.append(re.sub(r"[^A-Za-z0-9=,.+_-]", "_", item.lstrip("+~").replace("/", "_")))
    text = ",".join(items)
    if len(text) > max_len:  # keep it readable and unique: a prefix plus a hash of the whole
        text = f"{text[: max_len - 9]}~{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return f"job{job_num}" + (f"_{text}" if text else "")


def write_new_run_files(cfg: DictConfig, exp_dir: Path, hydra_files: dict[str, str]) -> None:
    # Unresolved, so the file shows the interpolations a reader can follow.
    atomic_write_text(OmegaConf.to_yaml(cfg, resolve=False), exp_dir / "config.yaml")
    for name, text in hydra_files.items():
        atomic_write_text(text, exp_dir / ".hydra" / name)
    meta = {
        "wandb_run_id": "".join(
            secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8)
        ),
        "max_train_steps": int(cfg.algo.config.num_learning_iterations),
        "created": _now(),
        "command": _command_line(),
        "launches": [],
    }
    atomic_write_text(OmegaConf.to_yaml(OmegaConf.create(meta)), exp_dir / "meta.yaml")


def record_launch(
    exp_dir: Path, start_iteration: int, planned_total: int, num_processes: int
) -> None:
    """Append this launch to meta.yaml and set the run's planned length."""
    path = exp_dir / "meta.yaml"
    meta = OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else {}
    meta["max_train_steps"] = int(planned_total)
    meta.setdefault("launches", [])
    meta["launches"] = list(meta["launches"] or []) + [
        {
            "command": _command_line(),
            "time": _now(),
            "start_iteration": int(start_iteration),
            "planned_iterations": int(planned_total),
            "num_processes": int(num_processes),
        }
    ]
    atomic_write_text(OmegaConf.to_yaml(OmegaConf.create(meta)), path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _command_line() -> str:
    return " ".join(sys.argv)
