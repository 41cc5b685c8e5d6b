"""AMP: discriminator loss and spectral norm, features from env and clips, style-reward order,
replay buffer, resume, bad input, and a 2-iteration run of g1_walk_amp_cpu."""

from __future__ import annotations

import copy
import csv

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from hydra.utils import instantiate
from torch import nn

from gear_sonic.checkpoint import CheckpointError
from gear_sonic.envs import create_manager_env
from gear_sonic.envs.manager_env.mdp.amp_features import (
    AMPFeatureSpec,
    clip_frame_state,
    env_frame_state,
    frame_features,
    per_feature,
    stack_windows,
)
from gear_sonic.train_agent_trl import run_training
from gear_sonic.trl.amp.config import settings_from_mapping
from gear_sonic.trl.amp.feature_report import feature_separation, frame_feature_names
from gear_sonic.trl.amp.replay_buffer import PolicyReplayBuffer
from gear_sonic.trl.builders import build_policy_and_value, ppo_config
from gear_sonic.trl.modules.discriminator import Discriminator, lsgan_r1_loss, style_reward
from gear_sonic.trl.trainer.amp_trainer import AMPTrainer
from gear_sonic.utils.motion_lib.errors import MotionDataError
from gear_sonic.utils.motion_lib.readers import read_motion_file
from tests.conftest import SAMPLE_MOTIONS, TINY_TRAINING, compose_config

AMP_CPU = "+exp=manager/amp/g1_walk_amp_cpu"
SMALL_AMP = ("amp.batch_size=16", "amp.updates_per_iteration=1", "amp.hidden_dims=[32,16]",
             "amp.warmup_updates=1",
             "amp.replay_capacity=64")  # fmt: skip


# ------------------------------------------------------------------------- discriminator
def test_lsgan_r1_matches_a_hand_computation_on_a_linear_discriminator():
    torch.manual_seed(0)
    disc = nn.Linear(3, 1)
    expert, policy = torch.randn(5, 3), torch.randn(4, 3)
    loss, terms = lsgan_r1_loss(lambda x: disc(x).squeeze(-1), expert, policy, r1_gamma=5.0)
    w, b = disc.weight.detach()[0], disc.bias.detach()[0]
    d_e, d_p = expert @ w + b, policy @ w + b
    # LSGAN: expert -> 1, policy -> 0; R1 = E |grad_x D|^2 = |w|^2 for a linear D.
    hand = ((d_e - 1) ** 2).mean() + (d_p**2).mean() + 0.5 * 5.0 * w.square().sum()
    assert torch.allclose(loss, hand, atol=1e-6)
    assert torch.allclose(terms["r1"], w.square().sum(), atol=1e-6)
    loss.backward()  # the R1 term reaches the parameters (create_graph): d/dw 2.5|w|^2 = 5 w
    grad_w = 2 * ((d_e - 1)[:, None] * expert).mean(0) + 2 * (d_p[:, None] * policy).mean(0) + 5 * w
    assert torch.allclose(disc.weight.grad[0], grad_w, atol=1e-5)


def test_spectral_norm_keeps_hidden_layers_near_unit_gain_through_training():
    torch.manual_seed(0)
    disc = Discriminator(20, hidden_dims=(64, 32, 16))
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    for _ in range(20):  # big steps: without the norm the weights would grow
        loss, _ = lsgan_r1_loss(disc, torch.randn(32, 20) + 1.0, torch.randn(32, 20), 5.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for _ in range(5):  # let the power iteration settle on the final weights
        disc(torch.randn(8, 20))
    for layer in disc.hidden_linears():
        sigma = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
        assert abs(float(sigma) - 1.0) < 0.05, float(sigma)
    assert disc(torch.randn(3, 20)).shape == (3,)


def test_style_reward_kinds():
    d = torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0, 4.0])
    assert torch.equal(style_reward(d, "clip"), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0, 1.0]))
    amp = style_reward(d, "amp")
    assert torch.allclose(amp, torch.tensor([0.0, 0.75, 0.9375, 1.0, 0.75, 0.0]))


# ------------------------------------------------------------------------- replay buffer
def test_replay_buffer_draws_the_historical_share_and_wraps():
    buffer = PolicyReplayBuffer(capacity=10, dim=2)
    current = torch.zeros(50, 2)
    batch, n_old = buffer.mixed_batch(current, 40, historical_share=0.5)
    assert n_old == 0 and batch.shape == (40, 2)  # empty buffer: all from the current rollout
    buffer.insert(torch.ones(25, 2))  # more than it holds: the newest 10 are kept
    assert len(buffer) == 10 and buffer.next == 0
    buffer.insert(torch.ones(3, 2))
    assert len(buffer) == 10 and buffer.next == 3
    batch, n_old = buffer.mixed_batch(current, 40, historical_share=0.5)
    assert n_old == 20 and int(batch[:, 0].sum()) == 20
    batch, n_old = buffer.mixed_batch(current, 40, historical_share=0.25)
    assert n_old == 10 and int(batch[:, 0].sum()) == 10


# ------------------------------------------------------------------------- features
def test_clip_lacking_foot_bodies_is_named_with_the_feature():
    clip = read_motion_file(SAMPLE_MOTIONS / "walk_forward_slow.npz")[0]
    clip.body_names = [name.replace("ankle_roll", "foot") for name in clip.body_names]
    joints = list(clip.joint_names)
    with pytest.raises(MotionDataError, match=r"walk_forward_slow.*foot_contacts"):
        clip_frame_state(clip, AMPFeatureSpec(), joints, 50.0)
    clip.joint_vel = None
    with pytest.raises(MotionDataError, match=r"walk_forward_slow.*joint_vel.*'joint_vel'"):
        clip_frame_state(clip, AMPFeatureSpec(), joints, 50.0)


def test_per_term_std_floors_cover_each_term_over_the_window():
    spec = AMPFeatureSpec(terms=("joint_pos", "root_height", "foot_contacts"), window=2)
    floors = per_feature({"joint_pos": 0.1, "root_height": 0.05, "foot_contacts": 0.2}, spec, 3)
    frame = [0.1, 0.1, 0.1, 0.05, 0.2, 0.2]
    assert torch.allclose(floors, torch.tensor(frame * 2))
    assert torch.equal(per_feature(0.5, spec, 3), torch.full((12,), 0.5))
    features = {"terms": list(spec.terms)}
    with pytest.raises(ValueError, match=r"norm_std_min: unknown terms \['height'\], no floor "
                                         r"for \['root_height', 'foot_contacts'\]"):  # fmt: skip
        settings_from_mapping({"features": features, "norm_std_min": {"joint_pos": 1, "height": 1}})


def test_windows_stack_consecutive_frames_oldest_first():
    frames = torch.arange(5.0).reshape(5, 1)
    assert stack_windows(frames, 3).tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]


@pytest.fixture(scope="module")
def amp_trainer():
    """An AMPTrainer on 2 G1 envs with a small discriminator (one env build for several tests)."""
    cfg = compose_config(AMP_CPU, *TINY_TRAINING, *SMALL_AMP, "num_envs=2",
                         "algo.config.num_mini_batches=1")  # fmt: skip
    env = create_manager_env(cfg, device="cpu", num_envs=2)
    actor, critic = build_policy_and_value(cfg, env.observation_shapes, env.num_actions)
    settings = instantiate(cfg.amp)  # as the train entry does
    trainer = AMPTrainer(env, actor, critic, ppo_config(cfg), Accelerator(cpu=True), settings)
    yield trainer
    env.close()


def test_env_and_clip_features_agree_on_a_kinematically_replayed_clip(amp_trainer):
    trainer = amp_trainer
    spec = trainer.amp.features
    mj_env = trainer.env.env
    robot = mj_env.scene["robot"]
    clip = read_motion_file(SAMPLE_MOTIONS / "walk_forward_medium.npz")[0]
    clip_state = clip_frame_state(clip, spec, list(robot.joint_names), 50.0)
    # Soles exactly at z = 0 touch nothing; 3 mm lower they press on the ground as when standing.
    clip_state.root_pos[:, 2] -= 0.003
    want = frame_features(clip_state, spec)
    for frame in (40, 97):  # double stance early on and mid-stride
        i = torch.tensor([frame, frame])
        s = clip_state
        pos = s.root_pos[i] + mj_env.scene.env_origins
        root = torch.cat([pos, s.root_quat[i], s.root_lin_vel_w[i], s.root_ang_vel_w[i]], dim=-1)
        robot.write_joint_state_to_sim(clip_state.joint_pos[i], clip_state.joint_vel[i])
        robot.write_root_state_to_sim(root)
        mj_env.sim.forward()
        mj_env.scene["feet_contact"].reset()  # drop the force cached at the last step
        got = frame_features(env_frame_state(mj_env, spec), spec)
        contact = slice(want.shape[1] - 2, None)  # forces vs height/speed: same side of 0.5
        assert torch.allclose(got[:, : contact.start], want[i, : contact.start], atol=2e-3), frame
        assert torch.equal(got[:, contact] > 0.5, want[i, contact] > 0.5), (frame, got[:, contact])
    trainer.env.reset()


def test_reference_state_init_puts_envs_on_clip_frames_at_their_origins(amp_trainer):
    from types import SimpleNamespace

    from gear_sonic.envs.manager_env.mdp.amp_events import reset_to_clip_frames

    mj_env = amp_trainer.env.env
    robot = mj_env.scene["robot"]
    params = {"motion_file": str(SAMPLE_MOTIONS), "clips": ["walk_forward_*"], "share": 1.0}
    term = reset_to_clip_frames(SimpleNamespace(params=params), mj_env)
    assert term.motion.keys and all(k.startswith("walk_forward_") for k in term.motion.keys)
    env_ids = torch.arange(mj_env.num_envs)
    term(mj_env, env_ids, **params)
    mj_env.sim.forward()
    root = robot.data.root_link_pose_w
    assert torch.allclose(root[:, :2], mj_env.scene.env_origins[:, :2], atol=1e-5)
    # Every env now holds exactly some frame of the chosen clips (joints, root height, rotation).
    motion = term.motion
    slots = torch.repeat_interleave(torch.arange(motion.num_clips), motion.clip_num_frames)
    frames = torch.cat([torch.arange(int(n)) for n in motion.clip_num_frames])
    every = motion.state_at_frames(slots, frames)
    for env in range(mj_env.num_envs):
        gap = (every.joint_pos - robot.data.joint_pos[env]).abs().amax(-1)
        best = int(gap.argmin())
        assert gap[best] < 1e-4
        assert abs(float(every.body_pos_w[best, 0, 2] - root[env, 2])) < 1e-4
        torch.testing.assert_close(every.joint_vel[best], robot.data.joint_vel[env], atol=1e-4, rtol=0)
    # share 0 leaves every env where it was.
    before = robot.data.joint_pos.clone()
    term.share = 0.0
    term(mj_env, env_ids, **params)
    mj_env.sim.forward()
    assert torch.equal(robot.data.joint_pos, before)
    amp_trainer.env.reset()


def test_expert_std_is_floored_per_term(amp_trainer):
    trainer = amp_trainer
    joints = trainer.env.num_actions  # the G1's 29 joints, all actuated
    floor = per_feature(trainer.amp.norm_std_min, trainer.amp.features, joints)
    assert isinstance(trainer.amp.norm_std_min, dict)  # the preset floors each term
    assert torch.equal(trainer.norm_std, torch.maximum(trainer.expert.std(0), floor))
    assert (trainer.norm_std > trainer.expert.std(0)).any()  # the clips hold some DOFs still


def test_style_rewards_come_from_the_discriminator_of_the_rollout(amp_trainer):
    trainer = amp_trainer
    before = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    trainer.collect_rollout()
    features = trainer.amp_env.features[: trainer.amp_env.count].clone()
    task = trainer.storage.rewards.clone()
    expected = trainer.style_rewards(features) * ~trainer.storage.dones
    metrics = trainer.after_rollout()
    added = (trainer.storage.rewards - task) / (trainer.amp.style_weight * trainer.env.step_dt)
    assert torch.allclose(added, expected, atol=1e-6)
    after = trainer.discriminator.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # then it was updated
    for key in ("disc_acc", "disc_real_mean", "disc_real_std", "disc_fake_mean", "disc_fake_std",
                "r1", "style_reward"):  # fmt: skip
        assert np.isfinite(metrics[f"amp/{key}"]), key


def test_resume_restores_discriminator_optimiser_normalisation_and_buffer(amp_trainer):
    trainer = amp_trainer
    trainer.run_iteration()
    state = copy.deepcopy(trainer.state_dict())  # as saved to disk: no live references
    saved = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    saved_buffer, saved_mean = trainer.replay.data.clone(), trainer.norm_mean.clone()
    saved_step = trainer.disc_optimizer.state_dict()["state"][0]["step"].clone()
    with torch.no_grad():  # scramble everything, then load
        for p in trainer.discriminator.parameters():
            p.add_(1.0)
    trainer.disc_optimizer.state.clear()
    trainer.norm_mean = trainer.norm_mean + 1.0
    trainer.replay.insert(torch.full((7, trainer.replay.data.shape[1]), 9.0))
    trainer.load_state_dict(state)
    for key, value in trainer.discriminator.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert torch.equal(trainer.disc_optimizer.state_dict()["state"][0]["step"], saved_step)
    assert torch.equal(trainer.norm_mean, saved_mean)
    assert torch.equal(trainer.replay.data, saved_buffer)
    assert len(trainer.replay) == len(state["amp"]["replay"]["data"])
    # A run configured with other features refuses the checkpoint, naming both lists.
    state["amp"]["features"] = {"terms": ["joint_pos"], "window": 1}
    with pytest.raises(CheckpointError, match=r"checkpoint has terms \['joint_pos'\].*config"):
        trainer.load_state_dict(state)


# ------------------------------------------------------------------------- preset end to end
def test_g1_walk_amp_cpu_two_iterations_write_their_files(tmp_path):
    cfg = compose_config(
        AMP_CPU, *TINY_TRAINING, *SMALL_AMP, "algo.config.num_learning_iterations=2",
        "manager_env.config.episode_length_s=0.1", f"experiment_dir={tmp_path / 'exp'}",
    )  # fmt: skip
    exp_dir = run_training(cfg)
    for name in ("config.yaml", "last.pt", "model_step_000002.pt", "metrics.csv"):
        assert (exp_dir / name).is_file(), name
    with (exp_dir / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == [1, 2]
    for key in ("amp/disc_acc", "amp/disc_real_mean", "amp/disc_real_std", "amp/disc_fake_mean",
                "amp/disc_fake_std", "amp/r1", "amp/style_reward",
                "Episode_Reward/track_lin_vel_xy_exp", "Episode_Reward/base_height_l2",
                "Episode_Reward/action_rate_l2", "Episode_Reward/joint_torques_l2"):  # fmt: skip
        assert np.isfinite(float(rows[-1][key])), key


def test_gpu_and_cpu_presets_share_env_and_discriminator():
    gpu, cpu = compose_config("+exp=manager/amp/g1_walk_amp"), compose_config(AMP_CPU)
    for cfg in (gpu, cpu):
        assert cfg.trainer._target_.endswith("amp_trainer.AMPTrainer")
    assert gpu.manager_env.rewards == cpu.manager_env.rewards
    assert gpu.amp.features == cpu.amp.features and gpu.amp.hidden_dims == [1024, 512, 256]
    other = compose_config(AMP_CPU, "++motion_file=elsewhere")
    assert other.amp.motion_file == "elsewhere"


# ------------------------------------------------------------------------- feature report
def test_feature_report_ranks_a_still_dof_moved_by_noise_first():
    spec = AMPFeatureSpec(terms=("joint_pos", "root_height"), window=2)
    names = frame_feature_names(spec, ["hip", "waist"])
    assert names == ["joint_pos:hip", "joint_pos:waist", "root_height:z"]
    gen = torch.Generator().manual_seed(0)

    def frames(count, waist_noise, height):
        hip = torch.randn(count, 1, generator=gen)
        waist = 0.3 + waist_noise * torch.randn(count, 1, generator=gen)
        root = height + 0.05 * torch.randn(count, 1, generator=gen)
        frame = torch.cat([hip, waist, root], dim=1)
        return torch.cat([frame, frame], dim=1)  # a window of 2 (the newest frame is read)

    expert, policy = frames(500, 0.0, 0.75), frames(500, 0.5, 0.60)
    mean, std = expert.mean(0), expert.std(0).clamp_min(0.05)

    def normalize(windows):  # as AMPTrainer.normalize
        return ((windows - mean) / std).clamp(-10.0, 10.0)

    rows = feature_separation(normalize(policy), normalize(expert), expert.std(0), std, names)
    by_name = {row.name: row for row in rows}
    assert rows[0].name == "joint_pos:waist" and rows[0].policy_abs_z > 5  # noise in a still DOF
    assert by_name["joint_pos:waist"].expert_std < 1e-6
    assert by_name["joint_pos:waist"].norm_std == pytest.approx(0.05)
    assert by_name["root_height:z"].separation > 2  # a shifted mean
    assert by_name["joint_pos:hip"].separation < 0.2 and by_name["joint_pos:hip"].policy_abs_z < 1


def test_feature_report_script_runs_on_the_amp_preset(capsys):
    from scripts.amp_feature_report import main

    rows = main(["--rollouts", "1", "--top", "3", "num_envs=2", *SMALL_AMP,
                 "algo.config.num_steps_per_env=4", "amp.warmup_updates=0"])  # fmt: skip
    assert len(rows) == 29 * 2 + 3 + 3 + 1 + 2  # a G1 frame: 29 joints x (pos, vel) + root + feet
    assert "farthest from the clips first" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--checkpoint", "no/such/file.pt"])
