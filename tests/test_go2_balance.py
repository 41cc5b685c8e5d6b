"""go2_balance: goal and push-curriculum terms on hand-made states; a 2-iteration CPU run writes
the world-model losses and the push survival rate to metrics.csv, and its checkpoint exports to a
recurrent deploy bundle the torch-free loop runs."""

from __future__ import annotations

import csv
import math
from types import SimpleNamespace

import torch

from gear_sonic.checkpoint import load_checkpoint
from gear_sonic.envs.manager_env.mdp import balance
from gear_sonic.train_agent_trl import run_training
from tests.conftest import compose_config


def fake_env(pos_xy, heading, time_outs=None):
    n = len(pos_xy)
    pos = torch.zeros(n, 3)
    pos[:, :2] = torch.tensor(pos_xy, dtype=torch.float32)
    data = SimpleNamespace(root_link_pos_w=pos, heading_w=torch.tensor(heading))
    return SimpleNamespace(
        scene={"robot": SimpleNamespace(data=data)}, num_envs=n, device=torch.device("cpu"),
        termination_manager=SimpleNamespace(
            time_outs=torch.tensor(time_outs or [False] * n)
        ),
    )


def test_goal_is_seen_in_the_base_yaw_frame_and_rewarded_by_distance_and_heading():
    env = fake_env([[0.0, 0.0], [1.0, 1.0]], [math.pi / 2, 0.0])
    balance.balance_state(env).goal_w[:] = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    goal_b = balance.goal_position_b(env)
    # Facing +y, a goal 2 m along +x is 2 m to the robot's right (-y in the base frame).
    torch.testing.assert_close(goal_b[0], torch.tensor([0.0, -2.0]), atol=1e-6, rtol=0)
    distance = balance.goal_distance_exp(env, std=1.0)
    torch.testing.assert_close(distance, torch.tensor([math.exp(-2.0), 1.0]))
    heading = balance.goal_heading_cos(env, near=0.3)
    torch.testing.assert_close(heading, torch.tensor([0.0, 1.0]), atol=1e-6, rtol=0)


def test_push_curriculum_scores_pushed_episodes_and_raises_the_speed():
    env = fake_env([[0.0, 0.0]] * 4, [0.0] * 4, time_outs=[True, True, True, False])
    balance.goal_position_b(env)  # an observation made the state first: the speed is unset
    state = balance.balance_state(env)
    assert state.push_speed is None
    state.pushed[:] = torch.tensor([True, True, False, True])
    ids = torch.arange(4)
    out = balance.push_curriculum(env, ids, initial_speed=0.5, min_episodes=3, promote_rate=0.6)
    # Pushed: envs 0, 1, 3; survived (time-out): 0, 1 -> 2/3 >= 0.6 over 3 episodes: promote.
    assert math.isclose(float(out["push_survival_rate"]), 2 / 3, rel_tol=1e-6)
    assert float(out["push_speed"]) == 0.75
    assert not state.pushed.any()
    state.pushed[:] = True
    env.termination_manager.time_outs[:] = False  # all fall: no promotion
    out = balance.push_curriculum(env, ids, initial_speed=0.5, min_episodes=3, promote_rate=0.6)
    assert float(out["push_speed"]) == 0.75 and float(out["push_survival_rate"]) < 2 / 3


def test_go2_balance_cpu_two_iterations_write_their_files(tmp_path):
    cfg = compose_config(
        "+exp=manager/locomotion/go2_balance_cpu",
        "num_envs=4",
        "algo.config.num_mini_batches=2",
        "algo.config.num_steps_per_env=8",
        "algo.config.sequence_length=4",
        "algo.config.num_learning_epochs=1",
        "algo.config.num_learning_iterations=2",
        "callbacks.model_save.save_interval=1",
        "callbacks.model_save.last_interval=1",
        "manager_env.config.episode_length_s=0.1",  # 5-step episodes: every rollout ends some
        "manager_env.events.push.interval_range_s=[0.02,0.04]",  # pushed within each episode
        "world_model.open_loop_steps=2",  # windows shorter than the 5-step episodes
        f"experiment_dir={tmp_path / 'exp'}",
    )
    assert cfg.actor_critic.actor.backbone.rnn_type == "lstm" and "world_model" in cfg
    exp_dir = run_training(cfg)
    for name in ("config.yaml", "last.pt", "model_step_000002.pt", "metrics.csv"):
        assert (exp_dir / name).is_file(), name
    with (exp_dir / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == [1, 2]
    for key in ("wm/obs_loss", "wm/reward_loss", "wm/done_loss", "wm/open_loop_error",
                "Curriculum/push/push_survival_rate", "Curriculum/push/push_speed"):
        assert math.isfinite(float(rows[-1][key])), key
    state = load_checkpoint(exp_dir / "last.pt")
    assert "world_model" in state and "backbone.core.rnn.weight_ih_l0" in state["actor"]
    _export_runs_in_the_deploy_loop(exp_dir / "last.pt", tmp_path / "onnx")


def _export_runs_in_the_deploy_loop(checkpoint, out_dir):
    """The eval entry's +export_onnx_only writes the LSTM as one step with its state in and
    out; the torch-free loop runs the bundle towards a goal, carrying the state."""
    import json

    import pytest
    from hydra import compose, initialize_config_dir

    from gear_sonic.eval_agent_trl import run_eval
    from tests.conftest import REPO_ROOT

    pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install -e .[test]")
    from gear_sonic.deploy.loop import DeployLoop

    with initialize_config_dir(config_dir=str(REPO_ROOT / "config"), version_base="1.3"):
        cfg = compose("base_eval", overrides=[f"+checkpoint={checkpoint}", "+export_onnx_only=true",
                                              "++device=cpu", f"++output_dir={out_dir}"])
    assert run_eval(cfg) == out_dir
    meta = json.loads((out_dir / "deploy" / "metadata.json").read_text())
    assert list(meta["models"]["policy"]["inputs"]) == ["actor_obs", "state_in"]
    assert meta["models"]["policy"]["recurrent_state"]["output"] == "state_out"
    loop = DeployLoop(out_dir / "deploy", goal=(1.0, 0.0))
    result = loop.run(5, stop_on_fall=False)
    assert result.steps == 5 and loop.memory.state.any()


def test_go2_balance_presets_compose_with_an_lstm_and_a_world_model():
    gpu = compose_config("+exp=manager/locomotion/go2_balance")
    cpu = compose_config("+exp=manager/locomotion/go2_balance_cpu")
    for cfg in (gpu, cpu):
        assert cfg.world_model._target_.endswith("WorldModelLearner")
        assert cfg.actor_critic.critic._target_.endswith("RecurrentCritic")
        assert cfg.algo.config.sequence_length <= cfg.algo.config.num_steps_per_env
        assert "push_curriculum" in cfg.manager_env.curriculum.push.func
    assert gpu.num_envs == 4096 and gpu.manager_env.config.sim.backend == "warp"
    assert cpu.num_envs == 64 and cpu.device == "cpu"
    assert gpu.manager_env.rewards == cpu.manager_env.rewards
    assert cpu.manager_env.events.push.params.initial_speed == 3.0
    assert cpu.manager_env.curriculum.push.params.initial_speed == 3.0
    assert list(cpu.manager_env.events.push.interval_range_s) == [1.0, 2.0]  # 2-3 per episode
    assert cpu.manager_env.config.episode_length_s == 4.0
