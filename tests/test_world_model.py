"""World model: losses fall on a deterministic toy system; saved and resumed with the trainer."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator

from gear_sonic.checkpoint import load_checkpoint, save_checkpoint
from gear_sonic.trl.world_model import WorldModelLearner


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_rollout(num_steps=32, num_envs=16, seed=0):
    """x' = 0.9 x + 0.1 a (2-D), reward = -|x|^2, terminated when |x_0| > 0.8 (then reset to 0)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(num_envs, 2, generator=gen) * 2 - 1
    obs, actions, rewards, dones = [], [], [], []
    for _ in range(num_steps):
        a = torch.rand(num_envs, 2, generator=gen) * 4 - 2
        obs.append(x.clone())
        actions.append(a)
        rewards.append(-(x.square().sum(-1)))
        x = 0.9 * x + 0.1 * a
        done = x[:, 0].abs() > 0.8
        dones.append(done)
        x[done] = 0.0
    zeros = torch.zeros(num_steps, num_envs)
    return SimpleNamespace(
        obs={"actor_obs": torch.stack(obs)}, actions=torch.stack(actions),
        rewards=torch.stack(rewards), dones=torch.stack(dones),
        time_outs=torch.zeros(num_steps, num_envs, dtype=torch.bool), values=zeros,
    )


def make_learner(**kwargs):
    torch.manual_seed(0)
    values = {"latent_dim": 16, "hidden_dims": [64], "num_epochs": 4, "mini_batch_size": 256}
    values.update(kwargs)
    return WorldModelLearner({"actor_obs": (2,)}, 2, **values)


def test_losses_fall_on_a_deterministic_toy_system():
    learner = make_learner()
    rollout = toy_rollout()
    assert rollout.dones.any()
    first = learner.learn(rollout)
    for _ in range(10):
        last = learner.learn(rollout)
    # Measured: every loss falls to under 10 % of its first value within 10 rollouts.
    for key in ("wm/obs_loss", "wm/reward_loss", "wm/done_loss", "wm/open_loop_error"):
        assert last[key] < 0.2 * first[key], (key, first[key], last[key])


def test_share_encoder_needs_a_policy_encoder():
    with pytest.raises(ValueError, match="share_encoder=true needs an actor backbone"):
        make_learner(share_encoder=True, actor=torch.nn.Linear(2, 2))


def test_shared_encoder_is_the_policy_encoder():
    from gear_sonic.trl.modules.actor_critic_modules import Actor
    from gear_sonic.trl.modules.recurrent_modules import RecurrentBackbone

    backbone = RecurrentBackbone({"actor_obs": (2,)}, 2, encoder_dims=[16, 8], rnn_hidden=8)
    learner = make_learner(share_encoder=True, actor=Actor(backbone, 2, init_std=0.5))
    assert learner.model.encoder is backbone.encoder
    before = backbone.encoder[0][0].weight.clone()
    learner.learn(toy_rollout(num_steps=8))
    assert not torch.equal(before, backbone.encoder[0][0].weight)


def test_trainer_saves_and_resumes_the_world_model(tmp_path):
    from gear_sonic.trl.trainer import PPOConfig, TRLPPOTrainer
    from tests.test_recurrent import CueEnv, recurrent_pair

    def trainer():
        torch.manual_seed(0)
        env = CueEnv()
        actor, critic = recurrent_pair(env.observation_shapes)
        cfg = PPOConfig(num_steps_per_env=8, num_mini_batches=2, num_learning_epochs=1)
        wm = functools.partial(WorldModelLearner, latent_dim=8, hidden_dims=[16])
        return TRLPPOTrainer(env, actor, critic, cfg, Accelerator(cpu=True), world_model=wm)

    first = trainer()
    metrics = first.run_iteration()
    assert {"wm/obs_loss", "wm/reward_loss", "wm/done_loss", "wm/open_loop_error"} <= set(metrics)
    save_checkpoint(first.state_dict(), tmp_path / "last.pt")
    second = trainer()
    second.load_state_dict(load_checkpoint(tmp_path / "last.pt"))
    saved, loaded = first.world_model.state_dict(), second.world_model.state_dict()
    for key, value in saved["model"].items():
        assert torch.equal(value, loaded["model"][key]), key
    assert loaded["optimizer"]["state"], "optimizer moments were not restored"


def test_open_loop_error_is_nan_when_every_window_holds_an_episode_end():
    learner = make_learner()
    rollout = toy_rollout(num_steps=8)
    rollout.dones[::2] = True
    obs = rollout.obs["actor_obs"]
    assert torch.isnan(learner.open_loop_error(obs, rollout.actions, rollout.dones, 3))
    assert torch.isfinite(learner.open_loop_error(obs, rollout.actions, rollout.dones, 1))
