"""The one checkpoint module: atomic saves, weights-only loads, architecture checks."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from gear_sonic.checkpoint import (
    CheckpointError,
    check_state_matches,
    load_checkpoint,
    load_module_state,
    save_checkpoint,
)


class Payload:
    """Unpickling this runs os.system: a checkpoint holding it must be refused, not executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_keeps_tensors_numbers_and_nested_dicts(tmp_path):
    state = {
        "actor": {"w": torch.arange(6.0).reshape(2, 3)},
        "iteration": 7,
        "lr": 1e-3,
        "config": {"name": "x", "levels": [8, 5, 5]},
        "env": {},
    }
    path = save_checkpoint(state, tmp_path / "sub" / "last.pt")
    loaded = load_checkpoint(path)
    torch.testing.assert_close(loaded["actor"]["w"], state["actor"]["w"])
    assert loaded["iteration"] == 7 and loaded["config"]["levels"] == [8, 5, 5]
    assert not [p for p in path.parent.iterdir() if p.name != "last.pt"]  # no temp file left


def test_checkpoint_holding_an_arbitrary_object_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"actor": {}, "extra": Payload(marker)}, path)
    with pytest.raises(CheckpointError, match=r"evil\.pt.*refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_missing_and_truncated_files_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    path = save_checkpoint({"w": torch.zeros(1000)}, tmp_path / "cut.pt")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"cut\.pt.*unreadable"):
        load_checkpoint(path)


def test_shape_mismatch_names_parameter_and_both_shapes():
    small, big = nn.Linear(2, 3), nn.Linear(2, 4)
    with pytest.raises(CheckpointError, match=r"'weight'.*\(4, 2\).*\(3, 2\)"):
        check_state_matches(small.state_dict(), big.state_dict(), "ckpt: actor")
    before = small.weight.detach().clone()
    with pytest.raises(CheckpointError, match="missing"):
        load_module_state(small, {"weight": torch.zeros(3, 2)}, "ckpt: actor")
    torch.testing.assert_close(small.weight.detach(), before)  # nothing touched on a mismatch
