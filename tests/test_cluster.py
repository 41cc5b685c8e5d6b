"""Cluster launching and sweeps: the SLURM launcher config composes, a 2-trial optuna sweep over
the learning rate trains and records both runs, and submitit's local executor runs a training."""

from __future__ import annotations

import csv
import logging
import subprocess
import sys

import pytest
import yaml
from hydra import compose, initialize_config_dir

from tests.conftest import CONFIG_DIR, REPO_ROOT

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")

GO2_TINY = (
    "+exp=manager/locomotion/go2_velocity_cpu",
    "num_envs=4",
    "algo.config.num_mini_batches=2",
    "algo.config.num_steps_per_env=8",
    "algo.config.num_learning_epochs=1",
    "algo.config.num_learning_iterations=1",
    "manager_env.config.episode_length_s=0.1",  # episodes end: mean_reward is a number
)


def test_slurm_launcher_and_optuna_sweeper_configs_compose():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "base",
            [*GO2_TINY, "hydra/launcher=slurm", "hydra/sweeper=optuna_search",
             "hydra.launcher.nodes=2", "hydra.launcher.tasks_per_node=8"],
            return_hydra_config=True,
        )
    launcher, sweeper = cfg.hydra.launcher, cfg.hydra.sweeper
    assert launcher._target_.endswith("SlurmLauncher") and launcher.nodes == 2
    assert launcher.max_num_timeout > 0 and "MUJOCO_GL=egl" in launcher.setup[0]
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"


def test_sweep_bookkeeping_stays_local_when_base_dir_is_a_storage_url():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        remote, local = (
            compose("base", [f"base_dir={base}"], return_hydra_config=True)
            for base in ("s3://bucket/runs", "file:///tmp/runs")
        )
    assert remote.hydra.sweep.dir.startswith("logs_rl/gear_sonic/multirun-")
    assert local.hydra.sweep.dir.startswith("/tmp/runs/gear_sonic/multirun-")


def test_optuna_sweep_two_trials_over_the_learning_rate(tmp_path, monkeypatch):
    import hydra
    from hydra.core.global_hydra import GlobalHydra

    from gear_sonic.train_agent_trl import main

    # The entry point's own task function, with the config dir given absolutely (imported from
    # a package, hydra would look for a `config` module).
    main = hydra.main(config_path=CONFIG_DIR, config_name="base", version_base="1.3")(
        main.__wrapped__
    )

    monkeypatch.setattr(
        sys,
        "argv",
        ["train_agent_trl.py", "-m", *GO2_TINY, f"base_dir={tmp_path}",
         "hydra/sweeper=optuna_search", "hydra.sweeper.n_trials=2",
         "algo.config.actor_learning_rate=tag(log,interval(1e-4,1e-2))"],
    )
    # The entry point configures the gear_sonic logger (own handler, no propagation): put it back
    # afterwards, or later tests' caplog would not see our log lines.
    ours = logging.getLogger("gear_sonic")
    saved = (list(ours.handlers), ours.level, ours.propagate)
    try:
        main()  # in this process: the basic launcher runs the trials one after the other
    finally:
        GlobalHydra.instance().clear()
        ours.handlers[:], ours.level, ours.propagate = saved
    runs = sorted((tmp_path / "TRL_Go2_Velocity").glob("go2_velocity_cpu-*_job*"))
    assert [r.name.split("_job")[1][0] for r in runs] == ["0", "1"], runs
    rates = set()
    for run in runs:
        with (run / "metrics.csv").open() as handle:
            assert [row["iteration"] for row in csv.DictReader(handle)] == ["1"]
        assert (run / "last.pt").is_file()
        rates.add(yaml.safe_load((run / "config.yaml").read_text())["algo"]["config"][
            "actor_learning_rate"])
    assert len(rates) == 2 and all(1e-4 <= r <= 1e-2 for r in rates)
    results = yaml.safe_load(next(tmp_path.rglob("optimization_results.yaml")).read_text())
    assert results["name"] == "optuna" and isinstance(results["best_value"], float)


# Our PPO on a gymnasium MuJoCo task: the launcher is under test, not the task, and this job
# starts in ~20 s where a manager-env job needs minutes on 2 cores.
GYM_TINY = (
    "+exp=gym/ppo",
    "gym.env_id=InvertedPendulum-v5",
    "num_envs=2",
    "algo.config.num_steps_per_env=16",
    "algo.config.num_mini_batches=2",
    "algo.config.num_learning_iterations=1",
)


def test_submitit_local_executor_runs_a_tiny_training(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "gear_sonic" / "train_agent_trl.py"), "-m",
         *GYM_TINY, f"base_dir={tmp_path}", "hydra/launcher=submitit_local",
         "hydra.launcher.timeout_min=10", "seed=3"],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "gym").glob("ppo-*"))
    assert len(runs) == 1 and (runs[0] / "last.pt").is_file(), runs
    assert (runs[0] / "metrics.csv").is_file()
    # The job ran in submitit's own process, which logged to the sweep dir's .submitit folder.
    assert list(tmp_path.rglob(".submitit/*/*_log.out"))
