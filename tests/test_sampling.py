"""Start sampling and encoder sampling, on plain tensors."""

from __future__ import annotations

import torch

from gear_sonic.envs.manager_env.mdp.adaptive_sampling import AdaptiveBinSampler
from gear_sonic.envs.manager_env.mdp.encoder_sampling import sample_encoder_masks


def make_sampler() -> AdaptiveBinSampler:
    # Two clips: 250 frames (5 bins of 50) and 120 frames (3 bins).
    return AdaptiveBinSampler(torch.tensor([250, 120]), bin_frames=50, pullback_frames=0)


def test_bins_cover_every_clip():
    sampler = make_sampler()
    assert sampler.num_bins == 8
    assert sampler.bin_length.tolist() == [50, 50, 50, 50, 50, 50, 50, 20]
    assert sampler.bin_of(torch.tensor([0, 1, 1]), torch.tensor([249, 0, 119])).tolist() == [4, 5, 7]


def test_failures_move_probability_to_the_failing_bin():
    torch.manual_seed(0)
    sampler = make_sampler()
    before = sampler.bin_probabilities().clone()
    clip, frame = torch.tensor([0]), torch.tensor([160])  # bin 3 of clip 0
    for _ in range(200):
        sampler.record_step(clip, frame)
    for _ in range(20):
        sampler.record_failures(clip, frame)
    after = sampler.bin_probabilities()
    assert after[3] > 2 * before[3]
    assert torch.isclose(after.sum(), torch.tensor(1.0))
    slots, frames = sampler.sample_starts(torch.tensor([0, 1]), 2000)
    in_bin = (slots == 0) & (frames >= 150) & (frames < 200)
    assert in_bin.float().mean() > 0.3  # bin 3 is 1 of 8 bins, drawn far more than 1/8


def test_uniform_share_keeps_every_bin_reachable():
    sampler = make_sampler()
    sampler.record_failures(torch.tensor([0] * 50), torch.tensor([0] * 50))
    assert (sampler.bin_probabilities() > 0).all()


def test_pullback_moves_starts_earlier():
    torch.manual_seed(0)
    sampler = AdaptiveBinSampler(torch.tensor([500]), bin_frames=50, pullback_frames=200)
    sampler.failures.zero_()
    sampler.failures[9] = 100.0
    sampler.uniform_ratio = 0.0
    _, frames = sampler.sample_starts(torch.tensor([0]), 1000)
    assert frames.min() >= 250 and frames.min() < 300 and frames.max() < 500


def test_state_round_trip_and_mismatch():
    sampler = make_sampler()
    sampler.record_failures(torch.tensor([1]), torch.tensor([10]))
    restored = make_sampler()
    restored.load_state_dict(sampler.state_dict())
    torch.testing.assert_close(restored.failures, sampler.failures)
    other = AdaptiveBinSampler(torch.tensor([100]), bin_frames=50)
    try:
        other.load_state_dict(sampler.state_dict())
    except ValueError as err:
        assert "another motion set" in str(err)
    else:
        raise AssertionError("a state with a different bin count must be rejected")


def test_encoder_masks_follow_pairing_rules():
    torch.manual_seed(0)
    probs = torch.tensor([1.0, 1.0, 1.0])  # g1, teleop, smpl
    has_smpl = torch.tensor([True] * 3000 + [False] * 3000)
    mask = sample_encoder_masks(probs, has_smpl, smpl_column=2, g1_column=0, teleop_column=1,
                                teleop_prob_when_smpl=0.5)
    assert mask[3000:, 2].sum() == 0  # no smpl for clips without keypoints
    smpl_rows = mask[:, 2] == 1
    assert smpl_rows.sum() > 800
    assert (mask[smpl_rows, 0] == 1).all()  # g1 paired with every smpl episode
    teleop_share = mask[smpl_rows, 1].mean()
    assert 0.4 < teleop_share < 0.6
    single = ~smpl_rows
    assert (mask[single].sum(-1) == 1).all()
