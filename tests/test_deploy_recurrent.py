"""Deploy of a recurrent policy (go2_balance's LSTM, walking to a goal): the export writes one
step model with the state as an input and an output, metadata.json says how to carry it, and
the torch-free loop carries it (zeros at each start) and matches the torch policy step by step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gear_sonic.envs import create_manager_env
from gear_sonic.trl.builders import build_policy_and_value
from tests.conftest import compose_config
from tests.deploy_contract import worst_actor_obs_gap

pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install -e .[test]")

BALANCE_PRESET = "+exp=manager/locomotion/go2_balance_cpu"
GOAL = (2.0, 0.5)  # metres from the start, world frame
TOLERANCE = 1e-5
STEPS = 15


@pytest.fixture(scope="module")
def balance_bundle(tmp_path_factory):
    """A 1-env go2_balance env without events or observation noise and the deploy bundle of a
    randomly initialised small LSTM actor exported from it."""
    from gear_sonic.deploy.bundle import write_deploy_bundle

    cfg = compose_config(BALANCE_PRESET, "num_envs=1",
                         "actor_critic.actor.backbone.rnn_hidden=16",
                         "actor_critic.actor.backbone.encoder_dims=[16]",
                         "actor_critic.actor.backbone.hidden_dims=[16]")
    cfg.manager_env.events = {}
    for group in cfg.manager_env.observations.values():
        group.enable_corruption = False
    env = create_manager_env(cfg, device="cpu", num_envs=1)
    torch.manual_seed(0)
    actor, _ = build_policy_and_value(cfg, env.observation_shapes, env.num_actions)
    bundle = tmp_path_factory.mktemp("balance_deploy")
    write_deploy_bundle(actor.eval(), env, bundle)
    yield env, actor, bundle
    env.close()


def test_metadata_states_the_recurrent_state(balance_bundle):
    _, _, bundle = balance_bundle
    assert sorted(p.name for p in bundle.iterdir()) == [
        "README.md", "metadata.json", "policy.onnx", "robot.mjb"]
    meta = json.loads((bundle / "metadata.json").read_text())
    model = meta["models"]["policy"]
    assert list(model["inputs"]) == ["actor_obs", "state_in"]
    assert model["inputs"]["state_in"] == [1, -1, 32]  # one LSTM layer, h and c of 16
    assert model["outputs"] == {"actions": [-1, 12], "state_out": [1, -1, 32]}
    state = model["recurrent_state"]
    assert (state["input"], state["output"], state["cell"]) == ("state_in", "state_out", "lstm")
    assert "zeros at the start of every episode" in state["reset"]
    assert meta["command"]["kind"] == "goal"
    readme = (bundle / "README.md").read_text()
    assert "--goal X,Y" in readme and "`state_out` [1, -1, 32]" in readme, readme


def test_goal_observation_matches_env(balance_bundle):
    """Same state and goal in both: the deploy loop's actor_obs (goal term included) equals the
    env's within 1e-5 under random actions."""
    from gear_sonic.deploy.loop import DeployLoop
    from gear_sonic.envs.manager_env.mdp.balance import balance_state

    env, _, bundle = balance_bundle
    loop = DeployLoop(bundle, goal=GOAL)
    loop.start()
    env.reset()
    robot = env.env.scene["robot"]
    balance_state(env.env).goal_w[:] = robot.data.root_link_pos_w[:, :2] + torch.tensor([GOAL])
    loop.goal_w = robot.data.root_link_pos_w[0, :2].numpy() + np.array(GOAL)
    obs, *_ = env.step(torch.zeros(1, env.num_actions))  # observations with the new goal
    loop.frame += 1
    worst = worst_actor_obs_gap(env, loop, obs, steps=6)
    assert worst <= TOLERANCE, worst


def test_loop_carries_the_state_and_matches_torch(balance_bundle):
    """ONNX in the loop == the torch actor over a sequence of the loop's own observations; a
    policy fed zeros instead of its state would act otherwise; start() zeroes the state."""
    from gear_sonic.deploy.loop import DeployLoop

    _, actor, bundle = balance_bundle
    loop = DeployLoop(bundle, goal=GOAL)
    loop.start()
    assert not loop.memory.state.any()
    actor.backbone.reset()
    actor.backbone.state = None
    worst = forgetful_gap = 0.0
    for _ in range(STEPS):
        feeds = loop.observe()
        zero_state = loop.session.run(None, {**feeds, "state_in": np.zeros((1, 1, 32),
                                                                          np.float32)})[0][0]
        action = loop.act(feeds)
        with torch.no_grad():
            expected = actor.act_inference({"actor_obs": torch.from_numpy(feeds["actor_obs"])})
        worst = max(worst, float(np.abs(action - expected[0].numpy()).max()))
        forgetful_gap = max(forgetful_gap, float(np.abs(action - zero_state).max()))
        loop.apply(action)
    assert worst <= TOLERANCE, worst
    assert forgetful_gap > 1e-3  # the state carried changes the actions
    torch.testing.assert_close(torch.from_numpy(loop.memory.state), actor.backbone.state,
                               atol=TOLERANCE, rtol=1e-4)
    loop.start()
    assert not loop.memory.state.any()
    result = loop.run(10, stop_on_fall=False)
    assert result.steps == 10 and loop.memory.state.any()
    assert np.isfinite(result.velocity_error["goal_distance_m"])


def test_cli_runs_a_goal_and_refuses_other_sources(balance_bundle, capsys):
    from gear_sonic.deploy.run_policy import main

    _, _, bundle = balance_bundle
    assert main([str(bundle), "--goal", "2,0.5", "--steps", "10", "--keep-going"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("goal 2,0.5: 10 steps"), lines[0]
    for args, message in ((("--goal", "2"), "--goal: '2' is not two numbers"),
                          (("--command", "0.5,0,0"), "this policy walks to a goal; pass --goal")):
        assert main([str(bundle), *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
