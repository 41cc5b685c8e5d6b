"""Recurrent PPO: states zeroed at episode ends, sequence mini-batches, resume, ONNX (CPU)."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from gear_sonic.checkpoint import load_checkpoint, save_checkpoint
from gear_sonic.trl.modules.actor_critic_modules import Actor
from gear_sonic.trl.modules.recurrent_modules import RecurrentBackbone, RecurrentCritic
from gear_sonic.trl.trainer import PPOConfig, TRLPPOTrainer
from gear_sonic.trl.trainer.recurrent_storage import segment_layout


class CueEnv:
    """A memory task: the first step of an episode shows a cue (+1 or -1), later steps show 0;
    the reward is -|action - cue| on every step. Episodes last `lengths[env]` steps."""

    def __init__(self, num_envs=6, lengths=(3, 5, 7, 4, 6, 9), seed=0):
        self.num_envs, self.num_actions, self.step_dt = num_envs, 1, 0.02
        self.device = torch.device("cpu")
        self.observation_shapes = {"actor_obs": (2,), "critic_obs": (2,)}
        self.lengths = torch.tensor(lengths[:num_envs])
        self.gen = torch.Generator().manual_seed(seed)
        self.cue = torch.zeros(num_envs)
        self.t = torch.zeros(num_envs, dtype=torch.long)
        self._reset(torch.ones(num_envs, dtype=torch.bool))

    def _reset(self, mask):
        self.cue[mask] = torch.randint(0, 2, (int(mask.sum()),), generator=self.gen) * 2.0 - 1.0
        self.t[mask] = 0

    def get_observations(self):
        first = (self.t == 0).float()
        x = torch.stack([self.cue * first, first], -1)
        return {"actor_obs": x, "critic_obs": x.clone()}

    def step(self, actions):
        reward = -(actions[:, 0].clamp(-2, 2) - self.cue).abs()
        self.t += 1
        dones = self.t >= self.lengths
        self._reset(dones)
        extras = {"time_outs": dones.clone(), "log": {}}
        return self.get_observations(), reward, dones, extras


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def recurrent_pair(obs_shapes, cell="gru", hidden=16):
    backbone = RecurrentBackbone(obs_shapes, 1, rnn_type=cell, rnn_hidden=hidden, hidden_dims=[16])
    actor = Actor(backbone, 1, init_std=0.5, std_min=0.01, std_max=1.0)
    critic = RecurrentCritic(obs_shapes, rnn_type=cell, rnn_hidden=hidden, hidden_dims=[16])
    return actor, critic


def make_trainer(cell="gru", steps=12, sequence_length=0, **cfg):
    torch.manual_seed(0)
    env = CueEnv()
    actor, critic = recurrent_pair(env.observation_shapes, cell)
    values = {
        "num_steps_per_env": steps, "num_learning_epochs": 2, "num_mini_batches": 2,
        "sequence_length": sequence_length, "actor_learning_rate": 1e-3, "lr_min": 1e-4,
        "lr_max": 1e-2, "entropy_coef": 0.0, "max_grad_norm": 1.0,
    }
    values.update(cfg)
    return TRLPPOTrainer(env, actor, critic, PPOConfig(**values), Accelerator(cpu=True))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_states_are_zeroed_exactly_at_episode_ends(cell):
    trainer = make_trainer(cell)
    trainer.collect_rollout()  # a first rollout, so the stored states are not all fresh zeros
    trainer.collect_rollout()
    storage = trainer.storage
    for states in (storage.actor_states, storage.critic_states):
        norms = states.abs().sum(dim=(1, 3))  # (T, N)
        after_done = storage.dones[:-1]
        assert after_done.any() and (~after_done).any()
        assert (norms[1:][after_done] == 0).all()
        assert (norms[1:][~after_done] > 0).all()


def test_segments_cut_at_dones_and_truncation_length():
    dones = torch.zeros(6, 2, dtype=torch.bool)
    dones[1, 0] = True  # env 0: steps 0-1 | 2-5, then cut at 4 by length 4 -> 2-3 | 4-5
    starts_t, starts_env, lengths, _, _ = segment_layout(dones, 4)
    assert starts_t.tolist() == [0, 2, 4, 0, 4]
    assert starts_env.tolist() == [0, 0, 0, 1, 1]
    assert lengths.tolist() == [2, 2, 2, 4, 2]


def test_sequence_batches_keep_time_order_masks_and_replay_the_rollout():
    trainer = make_trainer("lstm", steps=12, sequence_length=5)
    trainer.collect_rollout()
    trainer.collect_rollout()
    storage = trainer.storage
    storage.advantages.zero_()
    for batch in storage.mini_batch_generator(2, 1, shuffle=False):
        seq = batch.sequence
        assert seq.masks.shape[0] <= 5
        # Masks: every segment is a prefix of real steps.
        lengths = seq.masks.sum(0)
        assert torch.equal(seq.masks, torch.arange(seq.masks.shape[0])[:, None] < lengths)
        # Padded obs equal the stored obs in time order; padding is zero.
        padded = seq.obs["actor_obs"]
        assert torch.equal(padded[seq.masks], storage.obs["actor_obs"][batch.steps, batch.envs])
        assert (padded[~seq.masks] == 0).all()
        assert batch.actions.shape[0] == 12 * batch.env_ids.numel()
        # Re-running the sequences from their stored states reproduces the rollout exactly.
        with torch.no_grad():
            log_prob, _, _, _, values = trainer.policy(batch.obs, batch.actions, batch.sequence)
        torch.testing.assert_close(log_prob, batch.old_log_probs, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(values, batch.old_values, atol=1e-5, rtol=1e-5)


def test_sequence_longer_than_rollout_is_rejected_naming_both_numbers():
    with pytest.raises(ValueError, match=r"sequence_length \(32\).*num_steps_per_env \(24\)"):
        PPOConfig.from_mapping({"num_steps_per_env": 24, "sequence_length": 32})


def test_recurrent_critic_requires_recurrent_pair():
    from gear_sonic.trl.modules.actor_critic_modules import Critic

    env = CueEnv()
    actor, _ = recurrent_pair(env.observation_shapes)
    critic = Critic(env.observation_shapes, hidden_dims=[8])
    with pytest.raises(ValueError, match="recurrent actor needs a recurrent critic"):
        TRLPPOTrainer(env, actor, critic, PPOConfig(num_mini_batches=2), Accelerator(cpu=True))


def test_training_learns_the_cue_and_resumes(tmp_path):
    trainer = make_trainer("gru", steps=16, num_learning_epochs=4, actor_learning_rate=3e-3)
    for _ in range(16):
        last = trainer.run_iteration()
    # Episodes last 5.7 steps on average; a memoryless policy loses >= 1 a step after the cue
    # (about -4.7 an episode), remembering the cue approaches 0.
    assert last["mean_reward"] > -2.5, last["mean_reward"]
    path = tmp_path / "last.pt"
    save_checkpoint(trainer.state_dict(), path)
    resumed = make_trainer("gru", steps=16)
    resumed.load_state_dict(load_checkpoint(path))
    assert resumed.iteration == trainer.iteration
    for a, b in zip(resumed.actor.parameters(), trainer.actor.parameters()):
        assert torch.equal(a, b)
    resumed.run_iteration()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_recurrent_onnx_matches_torch_step_by_step(tmp_path, cell):
    ort = pytest.importorskip("onnxruntime")
    from gear_sonic.eval.onnx_recurrent import export_recurrent_policy

    torch.manual_seed(0)
    env = CueEnv()
    actor, _ = recurrent_pair(env.observation_shapes, cell)
    path = export_recurrent_policy(actor, tmp_path / "policy.onnx")
    session = ort.InferenceSession(str(path))
    backbone = actor.backbone
    state = backbone.core.zero_state(3).numpy()
    obs_seq = torch.randn(10, 3, 2)
    backbone.reset()
    backbone.state = None
    for obs in obs_seq:
        with torch.no_grad():
            expected = actor.act_inference({"actor_obs": obs})
        action, state = session.run(None, {"actor_obs": obs.numpy(), "state_in": state})
        torch.testing.assert_close(torch.from_numpy(action), expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.from_numpy(state), backbone.state, atol=1e-5, rtol=1e-4)


def test_squashed_gaussian_log_prob_is_the_change_of_variables():
    from gear_sonic.trl.modules.squashed_actor import SquashedGaussianActor

    torch.manual_seed(0)
    env = CueEnv()
    backbone = RecurrentBackbone(env.observation_shapes, 1, rnn_type="gru", rnn_hidden=8)
    actor = SquashedGaussianActor(backbone, 1, bound=2.0, init_std=0.5)
    obs = env.get_observations()
    with torch.no_grad():
        mean = backbone(obs, advance=False)  # before act, which advances the state
        actions, log_prob = actor.act(obs)
    assert actions.abs().max() < 2.0
    u = torch.atanh(actions / 2.0)
    normal = torch.distributions.Normal(mean, actor.action_std)
    expected = (normal.log_prob(u) - torch.log(2.0 * (1 - torch.tanh(u) ** 2))).sum(-1)
    torch.testing.assert_close(log_prob, expected, atol=1e-4, rtol=1e-4)


def test_evaluation_loops_forget_the_memory_of_ended_episodes():
    """run_episodes (and the locomotion/robustness loops through reset_memory) zero a recurrent
    policy's state where an episode ended, and only there."""
    import numpy as np

    from gear_sonic.eval.episodes import run_episodes
    from gear_sonic.trl.modules.recurrent_modules import reset_memory

    env = CueEnv(num_envs=3, lengths=(2, 3, 4))
    actor, _ = recurrent_pair(env.observation_shapes)
    actor.act_inference(env.get_observations())
    assert actor.backbone.state.abs().sum(-1).gt(0).all()
    reset_memory(actor, torch.tensor([False, True, False]))
    alive = actor.backbone.state.abs().sum(-1)[0]
    assert alive[1] == 0 and alive[0] > 0 and alive[2] > 0

    calls = []

    class Envs:  # the gymnasium vector API run_episodes uses, over CueEnv
        num_envs = 3

        def reset(self, seed=None):
            return env.get_observations(), {}

        def step(self, actions):
            obs, reward, done, _ = env.step(torch.as_tensor(actions))
            return obs, reward.numpy(), done.numpy(), np.zeros(3, dtype=bool), {}

    def policy(obs, deterministic):
        return actor.act_inference(obs).detach().numpy()

    def forget(finished):
        calls.append(None if finished is None else finished.copy())
        reset_memory(actor, None if finished is None else torch.as_tensor(finished))

    policy.reset = forget
    run_episodes(Envs(), policy, num_episodes=3)
    assert calls[0] is None  # zero memory before the first step
    assert any(c is not None and c.any() for c in calls[1:])
