"""PPO trainer: GAE, mini-batch layout, config checks, LR rule, and learning on a toy env (CPU)."""

from __future__ import annotations

import logging

import pytest
import torch
from accelerate import Accelerator
from omegaconf import OmegaConf
from torch import nn

from gear_sonic.checkpoint import load_checkpoint, save_checkpoint
from gear_sonic.trl.losses.token_losses import AuxLossSet
from gear_sonic.trl.modules.actor_critic_modules import Actor, Critic
from gear_sonic.trl.modules.base_module import MLP
from gear_sonic.trl.modules.universal_token_modules import UniversalTokenModule
from gear_sonic.trl.trainer import (
    PPOConfig,
    RolloutStorage,
    TRLAuxLossPPOTrainer,
    TRLPPOTrainer,
    adapt_learning_rate,
    check_batch_layout,
    compute_gae,
)

TOKENIZER_SHAPES = {"encoder_index": (3,), "command_multi_future_nonflat": (2, 4)}


class PointEnv:
    """Batched 1-D points that must reach a target; reward = -distance, 50-step episodes that
    end by time-out only. Optionally emits a tokenizer group (for the token-module test)."""

    def __init__(self, num_envs=64, episode_length=50, seed=0, tokenizer=False):
        self.num_envs, self.num_actions, self.step_dt = num_envs, 1, 0.02
        self.device = torch.device("cpu")
        self.max_episode_length = episode_length
        self.gen = torch.Generator().manual_seed(seed)
        self.tokenizer = tokenizer
        self.observation_shapes = {"actor_obs": (2,), "critic_obs": (2,)}
        if tokenizer:
            self.observation_shapes["tokenizer_obs"] = dict(TOKENIZER_SHAPES)
        self.pos = torch.zeros(num_envs)
        self.target = torch.zeros(num_envs)
        self.episode_length_buf = torch.zeros(num_envs, dtype=torch.long)
        self.episode_return = torch.zeros(num_envs)
        self.num_resets = 0  # stands in for the adaptive-sampling state
        self.nan_reward_at = None  # step index where one reward becomes NaN
        self.nan_critic_obs_at = None
        self.steps = 0
        self._reset(torch.ones(num_envs, dtype=torch.bool))

    def _reset(self, mask):
        n = int(mask.sum())
        self.pos[mask] = torch.rand(n, generator=self.gen) * 2 - 1
        self.target[mask] = torch.rand(n, generator=self.gen) * 2 - 1
        self.episode_length_buf[mask] = 0
        self.episode_return[mask] = 0.0

    def get_observations(self):
        x = torch.stack([self.pos, self.target], -1)
        obs = {"actor_obs": x, "critic_obs": x.clone()}
        if self.tokenizer:
            index = torch.zeros(self.num_envs, 3)
            index[:, 0] = 1.0
            frames = (self.target - self.pos)[:, None, None].expand(-1, 2, 4).clone()
            obs["tokenizer_obs"] = {"encoder_index": index, "command_multi_future_nonflat": frames}
        return obs

    def step(self, actions):
        self.pos = self.pos + 0.1 * actions[:, 0].clamp(-1.0, 1.0)
        reward = -(self.pos - self.target).abs()
        if self.steps == self.nan_reward_at:
            reward[0] = float("nan")
        self.steps += 1
        self.episode_return += reward
        self.episode_length_buf += 1
        time_outs = self.episode_length_buf >= self.max_episode_length
        terminated = torch.zeros_like(time_outs)
        dones = time_outs | terminated
        extras = {"time_outs": time_outs, "terminated": terminated, "log": {}}
        if dones.any():
            extras["log"] = {
                "Episode_Reward/distance": self.episode_return[dones].mean() / 50,
                "Episode_Termination/time_out": 1.0,
            }
            self.num_resets += int(dones.sum())
            self._reset(dones)
        obs = self.get_observations()
        if self.steps - 1 == self.nan_critic_obs_at:
            obs["critic_obs"][1, 0] = float("inf")
        return obs, reward, dones, extras

    def state_dict(self):
        return {"num_resets": self.num_resets}

    def load_state_dict(self, state):
        self.num_resets = state["num_resets"]


class TinyBackbone(nn.Module):
    """What Actor needs from a backbone: obs dict -> action mean."""

    def __init__(self, num_actions=1, hidden=(64, 64)):
        super().__init__()
        self.net = MLP(2, hidden, num_actions, "elu")

    def forward(self, obs):
        return self.net(obs["actor_obs"])


def small_cfg(**overrides) -> PPOConfig:
    values = dict(
        num_steps_per_env=25, num_learning_epochs=5, num_mini_batches=4, gamma=0.98,
        actor_learning_rate=1e-3, lr_min=1e-4, lr_max=1e-2, critic_learning_rate=3e-3,
        entropy_coef=0.0, max_grad_norm=1.0,
    )
    values.update(overrides)
    return PPOConfig(**values)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def accelerator():
    return Accelerator(cpu=True)


def make_trainer(accelerator, cfg=None, env=None, hidden=(64, 64), trainer_cls=TRLPPOTrainer,
                 **kwargs):
    torch.manual_seed(0)
    env = env or PointEnv()
    actor = Actor(TinyBackbone(hidden=hidden), 1, init_std=0.3, std_min=0.01, std_max=1.0)
    critic = Critic(env.observation_shapes, hidden_dims=(64, 64), activation="elu")
    return trainer_cls(env, actor, critic, cfg or small_cfg(), accelerator, **kwargs)


@torch.no_grad()
def evaluate(actor, seed=123, num_envs=256):
    """Mean 50-step return of the deterministic policy from fresh starts."""
    env = PointEnv(num_envs=num_envs, seed=seed)
    obs, total = env.get_observations(), torch.zeros(num_envs)
    for _ in range(50):
        obs, reward, _, _ = env.step(actor.act_inference(obs))
        total += reward
    return total.mean().item()


# -------------------------------------------------------------------- GAE and storage
def test_compute_gae_hand_computed():
    # gamma 0.9, lam 0.5. env 0 ends (terminates) after step 1; env 1 times out at step 1.
    rewards = torch.tensor([[1.0, 0.0], [2.0, 1.0], [3.0, 1.0]])
    values = torch.tensor([[0.5, 1.0], [1.0, 2.0], [1.5, 3.0]])
    dones = torch.tensor([[False, False], [True, True], [False, False]])
    time_outs = torch.tensor([[False, False], [False, True], [False, False]])
    last_values = torch.tensor([2.0, 4.0])
    storage = RolloutStorage(3, 2, {"actor_obs": (1,)}, 1)
    for t in range(3):
        storage.add({"actor_obs": torch.zeros(2, 1)}, torch.zeros(2, 1), torch.zeros(2),
                    values[t], rewards[t], dones[t], time_outs[t], gamma=0.9)
    # Time-out bootstrap: r = 1 + 0.9 * V(s_1) = 1 + 0.9 * 2 = 2.8.
    assert storage.rewards[1, 1].item() == pytest.approx(2.8)
    storage.compute_returns(last_values, gamma=0.9, lam=0.5)
    # env 0: d2 = 3 + .9*2 - 1.5 = 3.3; d1 = 2 - 1 = 1.0 (done); d0 = 1 + .9*1 - .5 = 1.4,
    #        A0 = 1.4 + .45 * 1.0 = 1.85.
    # env 1: d2 = 1 + .9*4 - 3 = 1.6; d1 = 2.8 - 2 = 0.8 (done); d0 = 0 + .9*2 - 1 = 0.8,
    #        A0 = 0.8 + .45 * 0.8 = 1.16.
    expected_adv = torch.tensor([[1.85, 1.16], [1.0, 0.8], [3.3, 1.6]])
    torch.testing.assert_close(storage.advantages, expected_adv)
    torch.testing.assert_close(storage.returns, expected_adv + values)
    adv, ret = compute_gae(storage.rewards, values, dones, last_values, 0.9, 0.5)
    torch.testing.assert_close(adv, expected_adv)
    torch.testing.assert_close(ret, expected_adv + values)


def test_mini_batches_partition_envs():
    shapes = {"actor_obs": (2,), "tokenizer_obs": {"frames": (2, 3)}}
    storage = RolloutStorage(4, 10, shapes, 1)
    for t in range(4):
        env_id = torch.arange(10, dtype=torch.float32)
        obs = {
            "actor_obs": env_id[:, None].expand(10, 2),
            "tokenizer_obs": {"frames": env_id[:, None, None].expand(10, 2, 3)},
        }
        storage.add(obs, env_id[:, None], env_id, env_id, torch.zeros(10),
                    torch.zeros(10, dtype=torch.bool), None, gamma=0.99)
    storage.compute_returns(torch.zeros(10), 0.99, 0.95)
    batches = list(storage.mini_batch_generator(num_mini_batches=3, num_epochs=2))
    assert len(batches) == 6
    for epoch in range(2):
        epoch_batches = batches[epoch * 3:(epoch + 1) * 3]
        ids = torch.cat([b.env_ids for b in epoch_batches])
        assert sorted(ids.tolist()) == list(range(10))  # every env exactly once
        assert sorted(len(b.env_ids) for b in epoch_batches) == [3, 3, 4]
    for b in batches:
        n = len(b.env_ids)
        rows = b.env_ids.float().repeat(4)  # (T, n) flattened time-major
        assert b.obs["tokenizer_obs"]["frames"].shape == (4 * n, 2, 3)
        torch.testing.assert_close(b.obs["actor_obs"][:, 0], rows)
        torch.testing.assert_close(b.obs["tokenizer_obs"]["frames"][:, 1, 2], rows)
        torch.testing.assert_close(b.old_log_probs, rows)
        torch.testing.assert_close(b.actions[:, 0], rows)


# -------------------------------------------------------------------- config
def test_config_rejects_unknown_key_and_wrong_type():
    with pytest.raises(ValueError, match=r"algo\.config\.clip_prm") as err:
        PPOConfig.from_mapping({"clip_prm": 0.1})
    assert "clip_param" in str(err.value)  # valid keys are listed
    with pytest.raises(ValueError, match=r"algo\.config\.num_mini_batches.*int"):
        PPOConfig.from_mapping({"num_mini_batches": 2.5})
    with pytest.raises(ValueError, match=r"algo\.config\.use_clipped_value_loss"):
        PPOConfig.from_mapping({"use_clipped_value_loss": "yes"})
    with pytest.raises(ValueError, match=r"algo\.config\.gamma"):
        PPOConfig.from_mapping({"gamma": 1.5})
    with pytest.raises(ValueError, match=r"algo\.config\.num_mini_batches"):
        PPOConfig.from_mapping({"num_mini_batches": 0})
    # Network specs do not belong here (they live in actor_critic); ints are fine for floats.
    with pytest.raises(ValueError, match=r"algo\.config\.actor"):
        PPOConfig.from_mapping({"actor": {"_target_": "x"}})
    node = OmegaConf.create({"gamma": 1, "schedule": "fixed"})
    cfg = PPOConfig.from_mapping(node)
    assert cfg.gamma == 1.0 and isinstance(cfg.gamma, float) and cfg.schedule == "fixed"


def test_check_batch_layout_message(accelerator):
    check_batch_layout(4, 4)
    with pytest.raises(ValueError, match=r"num_envs \(2.*algo\.config\.num_mini_batches \(4\)"):
        check_batch_layout(2, 4)
    with pytest.raises(ValueError, match="num_mini_batches"):
        make_trainer(accelerator, env=PointEnv(num_envs=2))


def test_adaptive_lr_rule():
    lr = 1e-3
    assert adapt_learning_rate(lr, 0.05, 0.01, 1e-5, 1e-2) == pytest.approx(lr / 1.5)
    assert adapt_learning_rate(lr, 0.001, 0.01, 1e-5, 1e-2) == pytest.approx(lr * 1.5)
    assert adapt_learning_rate(lr, 0.01, 0.01, 1e-5, 1e-2) == lr  # inside the dead band
    assert adapt_learning_rate(1e-2, 1e-4, 0.01, 1e-5, 1e-2) == 1e-2  # upper bound
    assert adapt_learning_rate(1e-5, 1.0, 0.01, 1e-5, 1e-2) == 1e-5  # lower bound
    assert adapt_learning_rate(9e-3, 1e-4, 0.01, 1e-5, 1e-2) == 1e-2  # clamped, not overshot
    # Only a finite positive KL moves the LR: zero, negative, NaN and inf leave it alone.
    for kl in (0.0, -1e-3, float("nan"), float("inf")):
        assert adapt_learning_rate(lr, kl, 0.01, 1e-5, 1e-2) == lr


# -------------------------------------------------------------------- training
class Recorder:
    def __init__(self, stop_at=None):
        self.events, self.stop_at = [], stop_at

    def on_train_start(self, trainer):
        self.events.append("start")

    def on_iteration_end(self, trainer, iteration, metrics):
        self.events.append(iteration)
        if iteration == self.stop_at:
            trainer.stop_requested = True

    def on_train_end(self, trainer):
        self.events.append("end")


def test_ppo_learns_point_env(accelerator):
    recorder = Recorder()
    trainer = make_trainer(accelerator, callbacks=[recorder])
    before = evaluate(trainer.actor)
    history = []
    trainer.callbacks.append(
        type("H", (), {"on_iteration_end": lambda s, t, i, m: history.append(m)})()
    )
    trainer.train(30)
    after = evaluate(trainer.actor)
    first, last = history[1]["mean_reward"], history[-1]["mean_reward"]
    assert after > before + 10.0, (before, after)
    assert last > first + 8.0, (first, last)
    assert recorder.events == ["start", *range(1, 31), "end"]
    m = history[-1]
    for key in ("iteration", "env_steps_per_s", "mean_reward", "mean_episode_length",
                "loss/surrogate", "loss/value", "loss/entropy", "loss/skipped_updates",
                "policy/actor_lr", "policy/critic_lr", "policy/mean_std", "policy/kl",
                "Episode_Reward/distance", "Episode_Termination/time_out"):
        assert key in m, key
    assert m["iteration"] == 30 and m["mean_episode_length"] == 50.0
    assert m["loss/skipped_updates"] == 0
    assert m["policy/critic_lr"] == 3e-3
    assert 1e-4 <= m["policy/actor_lr"] <= 1e-2
    assert trainer.actor_optimizer.param_groups[0]["lr"] == trainer.actor_lr
    assert trainer.total_env_steps == 30 * 25 * 64


def test_stop_requested_between_iterations(accelerator):
    recorder = Recorder(stop_at=2)
    trainer = make_trainer(accelerator, cfg=small_cfg(num_learning_epochs=1), callbacks=[recorder])
    trainer.train(10)
    assert trainer.iteration == 2 and recorder.events == ["start", 1, 2, "end"]


@pytest.mark.parametrize("what", ["rewards", "obs/critic_obs"])
def test_non_finite_rollout_skips_update(accelerator, caplog, what):
    env = PointEnv()
    trainer = make_trainer(accelerator, cfg=small_cfg(num_learning_epochs=1), env=env)
    setattr(env, "nan_reward_at" if what == "rewards" else "nan_critic_obs_at", 30)
    trainer.train(1)  # steps 0..24: clean
    params = [p.detach().clone() for p in trainer.policy.parameters()]
    with caplog.at_level(logging.WARNING):
        metrics = trainer.train(1)  # steps 25..49: one NaN / inf
    assert metrics["rollout/skipped_update"] == 1.0 and "loss/surrogate" not in metrics
    assert trainer.skipped_rollouts == 1
    assert any(what in r.getMessage() and "non-finite" in r.getMessage() for r in caplog.records)
    for before, now in zip(params, trainer.policy.parameters()):
        torch.testing.assert_close(before, now.detach(), rtol=0, atol=0)
    metrics = trainer.train(1)  # training goes on
    assert metrics["rollout/skipped_update"] == 0.0 and trainer.iteration == 3
    assert torch.isfinite(torch.tensor(metrics["loss/surrogate"]))


class NaNLossTrainer(TRLPPOTrainer):
    def extra_losses(self, batch, aux, action_mean):
        # NaN through a parameter, so the gradients (not just the loss value) are NaN.
        nan = self.actor.std.sum() * float("nan")
        return nan, {"nan": nan}


def test_non_finite_gradients_skip_the_step(accelerator):
    trainer = make_trainer(accelerator, cfg=small_cfg(num_learning_epochs=2),
                           trainer_cls=NaNLossTrainer)
    params = [p.detach().clone() for p in trainer.policy.parameters()]
    metrics = trainer.train(1)
    assert metrics["loss/skipped_updates"] == 8 and trainer.skipped_updates == 8
    for before, now in zip(params, trainer.policy.parameters()):
        torch.testing.assert_close(before, now.detach(), rtol=0, atol=0)


def test_state_dict_round_trip(accelerator, tmp_path):
    trainer = make_trainer(accelerator, cfg=small_cfg(num_learning_epochs=2),
                           experiment_dir=tmp_path)
    trainer.train(2)
    path = save_checkpoint(trainer.state_dict(), tmp_path / "model_2.pt")
    state = trainer.state_dict()
    assert {"actor", "critic", "actor_optimizer", "critic_optimizer", "actor_lr", "iteration",
            "total_env_steps", "env", "config"} <= set(state)

    resumed = make_trainer(accelerator, cfg=small_cfg(num_learning_epochs=2),
                           env=PointEnv(seed=5))
    resumed.actor_lr = 5e-3
    resumed.load_state_dict(load_checkpoint(path))
    assert resumed.iteration == 2 and resumed.total_env_steps == trainer.total_env_steps
    assert resumed.actor_lr == trainer.actor_lr
    assert resumed.actor_optimizer.param_groups[0]["lr"] == trainer.actor_lr
    assert resumed.env.num_resets == trainer.env.num_resets
    for a, b in zip(trainer.policy.state_dict().values(), resumed.policy.state_dict().values()):
        torch.testing.assert_close(a, b)
    metrics = resumed.train(1)
    assert resumed.iteration == 3 and metrics["iteration"] == 3

    other = make_trainer(accelerator, hidden=(32, 64))
    with pytest.raises(ValueError, match=r"actor.*backbone\.net\.0\.weight.*\(64, 2\).*\(32, 2\)"):
        other.load_state_dict(state)


# -------------------------------------------------------------------- aux-loss trainer
def test_aux_loss_trainer_with_token_backbone(accelerator):
    torch.manual_seed(0)
    env = PointEnv(num_envs=16, tokenizer=True)
    backbone = UniversalTokenModule(
        env.observation_shapes,
        encoders={"g1": {"input_terms": ["command_multi_future_nonflat"], "hidden_dims": [16]}},
        decoders={
            "g1_dyn": {"input_terms": ["tokens", "actor_obs"], "hidden_dims": [16]},
            "g1_kin": {"input_terms": ["tokens"], "hidden_dims": [16]},
        },
        fsq_levels=[5, 5],
        num_tokens=2,
        num_actions=1,
        priority=["g1"],
    )
    actor = Actor(backbone, 1, init_std=0.3, std_min=0.01, std_max=1.0)
    critic = Critic(env.observation_shapes, hidden_dims=(16,))
    aux = AuxLossSet({"g1_recon": {"coef": 0.1, "loss_type": "mse"}})
    trainer = TRLAuxLossPPOTrainer(env, actor, critic, small_cfg(num_learning_epochs=1),
                                   accelerator, aux)
    metrics = trainer.train(1)
    assert "loss/g1_recon" in metrics and metrics["loss/g1_recon"] > 0
    assert 0 < metrics["policy/fsq_mean_dim_usage"] <= 1

    plain = make_trainer(accelerator, trainer_cls=TRLAuxLossPPOTrainer, aux_losses=aux)
    with pytest.raises(ValueError, match="TokenOutput"):
        plain.train(1)


def test_clip_redraw_restarts_the_trainers_episode_statistics(accelerator):
    from types import SimpleNamespace

    from gear_sonic.trl.callbacks.im_resample import ImResampleCallback

    trainer = make_trainer(accelerator)
    trainer.train(1)
    trainer._ep_return.fill_(3.0)
    trainer._ep_length.fill_(7.0)
    redraws = []
    motion = SimpleNamespace(num_clips=2, num_total_clips=5)
    trainer.env.command = lambda name="motion": SimpleNamespace(motion=motion)
    trainer.env.resample_motions = lambda: redraws.append(1)
    ImResampleCallback(interval=1).on_iteration_end(trainer, 1, {})
    assert redraws == [1]
    assert trainer._ep_return.abs().sum() == 0 and trainer._ep_length.abs().sum() == 0
