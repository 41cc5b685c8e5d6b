"""The experiment dir's bookkeeping: a dir no other run shares, config.yaml, meta.yaml.

meta.yaml holds the W&B run id, `max_train_steps` (the run's planned total iterations, which the
checkpoint monitor reads to know when a run is over) and one entry per launch (command, time,
iteration at start, processes), updated on every resume. The dir may be a storage URL
(gear_sonic/storage.py): every file goes through its atomic writes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
import string
import sys
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gear_sonic import storage

MAX_SUFFIX_TRIES = 1000
# Override keys that say nothing about a sweep point (paths, the preset itself).
NAME_EXCLUDED_KEYS = ("exp", "experiment_dir", "base_dir", "experiment_name", "project_name")


def claim_new_dir(path: str | Path) -> Path | str:
    """Create `path` exclusively; if another run holds it, `path-1`, `path-2`, ... instead.
    A remote dir is claimed by a conditional put of its `.claim` object (only one run wins)."""
    path = storage.location(path)
    if not isinstance(path, Path):
        return _claim_remote_dir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(MAX_SUFFIX_TRIES):
        candidate = path if attempt == 0 else path.with_name(f"{path.name}-{attempt}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"experiment_dir={path}: {MAX_SUFFIX_TRIES} runs already use this name")


def _claim_remote_dir(url: str) -> str:
    storage.check_access(url)
    for attempt in range(MAX_SUFFIX_TRIES):
        candidate = url if attempt == 0 else f"{url}-{attempt}"
        taken = storage.list_names(candidate)  # a dir written before claims existed
        if not taken and storage.create_exclusive(_now().encode(), f"{candidate}/.claim"):
            return candidate
    raise FileExistsError(f"experiment_dir={url}: {MAX_SUFFIX_TRIES} runs already use this name")


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


def write_new_run_files(cfg: DictConfig, exp_dir, hydra_files: dict[str, str]) -> None:
    # Unresolved, so the file shows the interpolations a reader can follow.
    storage.atomic_write_text(
        OmegaConf.to_yaml(cfg, resolve=False), storage.join(exp_dir, "config.yaml")
    )
    for name, text in hydra_files.items():
        storage.atomic_write_text(text, storage.join(exp_dir, ".hydra", name))
    meta = {
        "wandb_run_id": "".join(
            secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8)
        ),
        "max_train_steps": int(cfg.algo.config.num_learning_iterations),
        "created": _now(),
        "command": _command_line(),
        "launches": [],
    }
    storage.atomic_write_text(
        OmegaConf.to_yaml(OmegaConf.create(meta)), storage.join(exp_dir, "meta.yaml")
    )


def load_meta(exp_dir) -> dict:
    """meta.yaml as a dict ({} when the dir has none yet)."""
    path = storage.join(exp_dir, "meta.yaml")
    if not storage.is_file(path):
        return {}
    return OmegaConf.to_container(OmegaConf.create(storage.read_text(path))) or {}


def record_launch(exp_dir, start_iteration: int, planned_total: int, num_processes: int) -> None:
    """Append this launch to meta.yaml and set the run's planned length."""
    path = storage.join(exp_dir, "meta.yaml")
    meta = load_meta(exp_dir)
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
    storage.atomic_write_text(OmegaConf.to_yaml(OmegaConf.create(meta)), path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _command_line() -> str:
    return " ".join(sys.argv)


def final_metric(exp_dir, key: str | None = None) -> float:
    """The last logged value of `key` (default mean_reward) in metrics.csv, nan when there is
    none: the objective a sweeper such as hydra/sweeper=optuna optimises. A key asked for
    (`+objective=KEY`) that is not a column is an error."""
    if exp_dir is None:
        return float("nan")
    path = storage.join(exp_dir, "metrics.csv")
    if not storage.is_file(path):
        return float("nan")
    rows = list(csv.DictReader(io.StringIO(storage.read_text(path))))
    if key is None:
        key = "mean_reward"
    elif rows and key not in rows[-1]:
        raise KeyError(f"+objective={key}: not a metrics.csv column (one of {sorted(rows[-1])})")
    try:
        return float(rows[-1].get(key)) if rows else float("nan")
    except (TypeError, ValueError):  # no such column, or an empty cell
        return float("nan")
