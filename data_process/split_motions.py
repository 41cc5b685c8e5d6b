"""Reproducible train/test split of motion clips by clip key.

Usage: python data_process/split_motions.py PATH OUT_DIR [--test-fraction 0.1] [--seed 0]

A clip goes to test when sha256("<seed>:<key>") read as a number in [0, 1) is below
--test-fraction. The decision depends only on the key and the seed, so adding clips never
moves existing ones between train and test. Keys: NPZ / CSV file stem, SONIC PKL dict keys.

Writes OUT_DIR/train/ and OUT_DIR/test/ mirroring PATH's layout: single-clip files are copied
(symlinks are resolved into real copies); a multi-clip PKL whose clips fall on both sides
becomes two PKLs with the same name. OUT_DIR/split.json lists the keys of each side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import joblib  # noqa: E402  (writes the split PKLs)

from data_process.convert_motions import input_files  # noqa: E402
from gear_sonic.utils.motion_lib import MotionDataError  # noqa: E402
from gear_sonic.utils.motion_lib.safe_pickle import (  # noqa: E402
    TRUST_PICKLE_HELP, load_motion_pickle)
from gear_sonic.utils.motion_lib.writers import _atomic_write  # noqa: E402

SIDES = ("train", "test")


def key_score(key: str, seed: int) -> float:
    """Uniform number in [0, 1) from key and seed (stable across runs, platforms, Pythons)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def side_of(key: str, seed: int, test_fraction: float) -> str:
    return "test" if key_score(key, seed) < test_fraction else "train"


def _load_pkl(path: Path, trust_pickle: bool = False) -> dict:
    try:
        data = load_motion_pickle(path, trust_pickle)
    except MotionDataError:
        raise  # a refused global already names the file and the class
    except Exception as exc:  # truncated pickles raise many different types
        raise MotionDataError(f"cannot be unpickled ({type(exc).__name__}: {exc})",
                              source=str(path), fix="re-export the file") from exc
    if not isinstance(data, dict) or not data:
        raise MotionDataError("expected a non-empty dict {clip_key: clip_dict}",
                              source=str(path), fix="write the PKL with write_sonic_pkl")
    return data


def split(path: str, out_dir: str, test_fraction: float, seed: int,
          trust_pickle: bool = False) -> dict:
    """Do the split; returns the split.json content."""
    if not 0.0 <= test_fraction <= 1.0:
        raise MotionDataError(f"--test-fraction {test_fraction} is outside [0, 1]",
                              fix="pass a fraction such as 0.1")
    root, out = Path(path), Path(out_dir)
    files = input_files(root)
    for side in SIDES:
        target = out / side
        if target.exists() and any(target.iterdir()):
            raise MotionDataError("is not empty; old files would leak into the new split",
                                  source=str(target), fix="use a fresh OUT_DIR")
    keys = {side: [] for side in SIDES}
    origin: dict[str, str] = {}
    for file in files:
        rel = file.relative_to(root) if root.is_dir() else Path(file.name)
        if file.suffix == ".pkl":
            data = _load_pkl(file, trust_pickle)
            parts = {side: {} for side in SIDES}
            for key, entry in data.items():
                parts[side_of(str(key), seed, test_fraction)][key] = entry
        else:
            parts = {side: {} for side in SIDES}
            parts[side_of(file.stem, seed, test_fraction)][file.stem] = None
        for side in SIDES:
            for key in parts[side]:
                if str(key) in origin:
                    raise MotionDataError(f"also appears in '{origin[str(key)]}'",
                                          source=str(file), clip_key=str(key),
                                          fix="give every clip a unique key before splitting")
                origin[str(key)] = str(rel)
                keys[side].append(str(key))
        sides_used = [side for side in SIDES if parts[side]]
        for side in sides_used:
            target = out / side / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if len(sides_used) == 1:
                shutil.copyfile(file, target)  # follows symlinks: always a real copy
            else:
                subset = parts[side]
                _atomic_write(target, lambda f, subset=subset: joblib.dump(subset, f))
    for side in SIDES:
        (out / side).mkdir(parents=True, exist_ok=True)
    report = {
        "method": "sha256('<seed>:<key>') / 2**64 < test_fraction -> test",
        "seed": seed,
        "test_fraction": test_fraction,
        "train": sorted(keys["train"]),
        "test": sorted(keys["test"]),
        "files": dict(sorted(origin.items())),
    }
    text = json.dumps(report, indent=1).encode("utf-8")
    _atomic_write(out / "split.json", lambda f: f.write(text))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="motion file (.pkl/.npz/.csv) or a folder of them")
    parser.add_argument("out_dir", help="gets train/, test/ and split.json")
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    args = parser.parse_args(argv)
    try:
        report = split(args.path, args.out_dir, args.test_fraction, args.seed, args.trust_pickle)
    except MotionDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(report['train'])} train / {len(report['test'])} test clips -> {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
