"""Deploy of a locomotion (MLP) policy: a tiny go2 policy exported to a deploy bundle
(policy.onnx + metadata.json + robot.mjb), its observation contract against the env, and the
torch-free loop driven by velocity commands from the command line or a schedule file."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch

from gear_sonic.envs import create_manager_env
from gear_sonic.eval.locomotion import hold_commands
from gear_sonic.trl.builders import build_policy_and_value
from tests.conftest import REPO_ROOT, compose_config
from tests.deploy_contract import worst_actor_obs_gap

pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install -e .[test]")

GO2_PRESET = "+exp=manager/locomotion/go2_velocity_cpu"
CLI = REPO_ROOT / "gear_sonic" / "deploy" / "run_policy.py"
SUMMARY = re.compile(r"^latency p50 (\S+) ms, p99 (\S+) ms, real-time factor (\S+)$")
CONTRACT_TOLERANCE = 1e-5
COMMAND = (0.5, 0.0, 0.2)


@pytest.fixture(scope="module")
def go2_bundle(tmp_path_factory):
    """A 1-env go2 env without randomisation or observation noise and the deploy bundle of a
    randomly initialised MLP teacher exported from it."""
    from gear_sonic.deploy.bundle import write_deploy_bundle

    cfg = compose_config(GO2_PRESET, "num_envs=1")
    cfg.manager_env.events = {}
    for group in cfg.manager_env.observations.values():
        group.enable_corruption = False
    env = create_manager_env(cfg, device="cpu", num_envs=1)
    torch.manual_seed(0)
    actor, _ = build_policy_and_value(cfg, env.observation_shapes, env.num_actions)
    bundle = tmp_path_factory.mktemp("go2_deploy")
    write_deploy_bundle(actor.eval(), env, bundle)
    yield env, bundle
    env.close()


def test_bundle_holds_the_policy_and_its_contract(go2_bundle):
    _, bundle = go2_bundle
    assert sorted(p.name for p in bundle.iterdir()) == [
        "README.md", "metadata.json", "policy.onnx", "robot.mjb"]
    meta = json.loads((bundle / "metadata.json").read_text())
    assert meta["robot"] == "go2" and meta["command"]["kind"] == "velocity"
    assert list(meta["models"]["policy"]["inputs"]) == ["actor_obs"]
    assert list(meta["observation_contract"]) == ["actor_obs"]  # the critic stays in training
    friction = next(t for t in meta["observation_contract"]["actor_obs"]["terms"]
                    if t["func"] == "geom_friction")
    assert friction["params"]["asset_cfg"]["geom_names"] == [
        "FL_foot_collision", "FR_foot_collision", "RL_foot_collision", "RR_foot_collision"]
    assert "--command VX,VY,WZ" in (bundle / "README.md").read_text()


def test_observation_contract_matches_env(go2_bundle):
    """Same state and command in both: the deploy loop's actor_obs equals the env's within
    1e-5, step after step, under random actions."""
    from gear_sonic.deploy.commands import CommandSchedule
    from gear_sonic.deploy.loop import DeployLoop

    env, bundle = go2_bundle
    loop = DeployLoop(bundle, commands=CommandSchedule.constant(",".join(map(str, COMMAND))))
    loop.start()
    env.reset()
    obs = hold_commands(env, torch.tensor([COMMAND]))
    worst = worst_actor_obs_gap(env, loop, obs, steps=8)
    print(f"go2 actor_obs max abs difference {worst:.1e}")
    assert worst <= CONTRACT_TOLERANCE


def test_cli_runs_velocity_commands_torch_free(go2_bundle, tmp_path, capsys):
    from gear_sonic.deploy.run_policy import main

    _, bundle = go2_bundle
    assert main([str(bundle), "--command", "0.5,0,0.2", "--steps", "20"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("velocity commands: 20 steps"), lines[0]
    assert SUMMARY.match(lines[-1]), lines[-1]
    # A schedule file, in a fresh interpreter: nothing heavy is imported.
    schedule = tmp_path / "schedule.csv"
    schedule.write_text("time_s,vx,vy,wz\n0,0.5,0,0\n0.2,0,0,0.5  # turn\n")
    result = subprocess.run([sys.executable, "-X", "importtime", str(CLI), str(bundle),
                             "--commands", str(schedule), "--steps", "20"], check=False,
                            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert SUMMARY.match(result.stdout.strip().splitlines()[-1])
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert not sorted(m for m in imported if m.split(".")[0] in ("torch", "mjlab", "warp"))


def test_velocity_schedule_holds_each_row_until_the_next(tmp_path):
    from gear_sonic.deploy.commands import CommandSchedule

    path = tmp_path / "s.csv"
    path.write_text("# a turn after a straight\n0,0.5,0,0\n1.0,0,0,0.5\n")
    schedule = CommandSchedule.from_file(path)
    assert list(schedule.at(0.98)) == [0.5, 0, 0] and list(schedule.at(1.0)) == [0, 0, 0.5]


@pytest.mark.parametrize(("args", "message"), [
    (("--command", "0.5,0"), "--command: '0.5,0' is not three numbers"),
    (("--commands", "missing.csv"), "missing.csv: no such command schedule"),
    (("--motion", "clip.npz"), "this policy follows velocity commands; pass --command"),
])
def test_bad_velocity_input_is_one_line_exit_2(go2_bundle, args, message, capsys):
    from gear_sonic.deploy.run_policy import main

    _, bundle = go2_bundle
    assert main([str(bundle), *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
