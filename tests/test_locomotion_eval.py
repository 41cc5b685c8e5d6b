"""eval_agent_trl.py on a Go2 velocity checkpoint: the fixed command sweep writes metrics_eval.json
(returns, velocity errors, fall rate) under the keyed output dir, and renders the worst commands."""

from __future__ import annotations

import json

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gear_sonic.checkpoint import save_checkpoint
from gear_sonic.eval.locomotion import is_locomotion, parse_commands, run_eval_commands
from gear_sonic.eval.outputs import evaluation_name
from gear_sonic.eval_agent_trl import run_eval
from gear_sonic.trl.builders import build_policy_and_value
from tests.conftest import CONFIG_DIR, compose_config

GO2_CPU = "+exp=manager/locomotion/go2_velocity_cpu"


def _eval_cfg(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("base_eval", overrides=list(overrides))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def go2_checkpoint(tmp_path_factory):
    """A run dir with config.yaml and an untrained Go2 actor saved as step 4."""
    cfg = compose_config(GO2_CPU, "num_envs=2", "timestamp=fixed")
    exp_dir = tmp_path_factory.mktemp("go2_run")
    OmegaConf.save(cfg, exp_dir / "config.yaml")
    torch.manual_seed(0)
    actor, critic = build_policy_and_value(cfg, {"actor_obs": (53,), "critic_obs": (53,)}, 12)
    path = exp_dir / "model_step_000004.pt"
    save_checkpoint(
        {"actor": actor.state_dict(), "critic": critic.state_dict(), "iteration": 4}, path
    )
    return path


def test_sweep_parsing_and_task_detection():
    assert is_locomotion(compose_config(GO2_CPU))
    tracking = {"manager_env": {"commands": {"motion": {"type": "tracking"}}}}
    assert not is_locomotion(OmegaConf.create(tracking))
    assert len(parse_commands(None)) == 8
    assert parse_commands([[1, 0, 0]]) == [(1.0, 0.0, 0.0)]
    with pytest.raises(ValueError, match=r"\+\+eval_commands=.*\[v_x, v_y, yaw_rate\]"):
        parse_commands([[1, 0]])
    # The CPU demo names its own (forward-walking) sweep; ++eval_commands still wins.
    cpu_run = compose_config(GO2_CPU)
    own = parse_commands(run_eval_commands(None, cpu_run))
    assert own[0] == (0.0, 0.0, 0.0) and all(vy == 0 and wz == 0 for _, vy, wz in own)
    assert parse_commands(run_eval_commands([[0, 0, 0.5]], cpu_run)) == [(0.0, 0.0, 0.5)]
    assert run_eval_commands(None, compose_config("+exp=manager/locomotion/go2_velocity")) is None
    # AMP runs sweep the forward speeds they were trained on.
    amp_run = compose_config("+exp=manager/amp/g1_walk_amp_cpu")
    assert is_locomotion(amp_run)
    forward = [(v, 0.0, 0.0) for v in (0.3, 0.45, 0.6)]
    assert parse_commands(run_eval_commands(None, amp_run)) == forward


def test_eval_writes_locomotion_metrics_and_videos(go2_checkpoint):
    sweep = "++eval_commands=[[0.0,0.0,0.0],[0.5,0.0,0.0],[0.0,0.0,0.5]]"
    path = run_eval(
        _eval_cfg(f"+checkpoint={go2_checkpoint}", "num_envs=6", sweep, "++eval_duration_s=0.4")
    )
    # A sweep given on the command line lands in its own folder beside the default evaluation.
    commands = [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.5]]
    name = evaluation_name(sweep={"eval_commands": commands, "eval_duration_s": 0.4})
    assert path == go2_checkpoint.parent / "eval" / "step_000004" / name / "metrics_eval.json"
    result = json.loads(path.read_text())
    agg = result["aggregate"]
    for key in (
        "return_mean",
        "lin_vel_error",
        "yaw_rate_error",
        "fall_rate",
        "tracking_reward",
        "success_rate",
        "progress_rate",
    ):
        assert isinstance(agg[key], float), key
    assert result["task"] == "locomotion" and agg["num_commands"] == 3
    rows = {r["clip"]: r for r in result["clips"]}
    assert rows["vx+0.00_vy+0.00_wz+0.00"]["num_envs"] == 2
    # An untrained policy standing still: about 0.5 m/s off the forward command.
    assert rows["vx+0.50_vy+0.00_wz+0.00"]["lin_vel_error"] > 0.2
    assert 0.0 <= agg["fall_rate"] <= 1.0 and agg["lin_vel_error"] > 0.0
    # The checkpoint monitor's render step: the worst commands of that file.
    videos = run_eval(
        _eval_cfg(
            f"+checkpoint={go2_checkpoint}",
            f"++metrics_file={path}",
            "++num_render_videos=1",
            "render_width=64",
            "render_height=48",
        )
    )
    assert len(list(videos.glob("*.mp4"))) == 1 and (videos / "clips.json").is_file()
