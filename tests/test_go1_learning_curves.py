"""scripts/go1_learning_curves.py on a tiny budget: both trainers run on mjlab's Go1 task (native
backend, no foot-height scan) and the CSV, the PNG and the ratio line are written."""

from __future__ import annotations

import csv

from scripts.go1_learning_curves import main


def test_quick_run_writes_both_curves_and_the_ratio(tmp_path, capsys):
    assert main(["--quick", "--out-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("ratio ours/rsl_rl: "), lines[-1]
    rows = list(csv.DictReader((tmp_path / "go1_learning_curves.csv").open()))
    steps = {
        name: [int(r["env_steps"]) for r in rows if r["trainer"] == name]
        for name in ("rsl_rl", "ours")
    }
    assert steps["rsl_rl"] == steps["ours"] == [96, 192]  # equal env-steps: 4 envs x 24 x 2
    assert (tmp_path / "go1_learning_curves.png").read_bytes()[:4] == b"\x89PNG"
