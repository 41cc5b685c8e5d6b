"""Failure-driven start sampling over 1 s bins of every clip (REFERENCE section 9).

Every clip of the whole dataset is cut into bins of `bin_frames` frames. Each control step adds
1/bin_length episode-mass to the bin each env is in; an episode that terminates (not a time-out)
adds one failure to its bin. A bin's weight is its failure rate (failures / episodes), capped at
`max_over_mean` times the mean rate, mixed with a uniform share; each clip gets the same total
weight whatever its length. A start is drawn as bin -> uniform frame inside it -> pulled back by
up to `pullback_frames` so the policy approaches the hard part from earlier in the clip.
"""

from __future__ import annotations

import torch


class AdaptiveBinSampler:
    def __init__(
        self,
        dataset_clip_frames: torch.Tensor,
        bin_frames: int,
        uniform_ratio: float = 0.1,
        max_over_mean: float = 200.0,
        pullback_frames: int = 200,
        init_failures: float = 1.0,
        device: str | torch.device = "cpu",
    ):
        self.device = torch.device(device)
        self.bin_frames = int(bin_frames)
        self.uniform_ratio = float(uniform_ratio)
        self.max_over_mean = float(max_over_mean)
        self.pullback_frames = int(pullback_frames)
        frames = dataset_clip_frames.to(self.device, torch.long)
        bins_per_clip = (frames + self.bin_frames - 1) // self.bin_frames
        self.clip_bin_offset = torch.cumsum(bins_per_clip, 0) - bins_per_clip
        self.bins_per_clip = bins_per_clip
        num_bins = int(bins_per_clip.sum())
        self.bin_clip = torch.repeat_interleave(torch.arange(len(frames), device=self.device), bins_per_clip)
        local_bin = torch.arange(num_bins, device=self.device) - self.clip_bin_offset[self.bin_clip]
        self.bin_start = local_bin * self.bin_frames
        self.bin_length = torch.minimum(frames[self.bin_clip] - self.bin_start, torch.tensor(self.bin_frames, device=self.device))
        # Start from `init_failures` failures over one episode so untried bins are not ignored.
        self.failures = torch.full((num_bins,), float(init_failures), device=self.device)
        self.episodes = torch.ones(num_bins, device=self.device)

    @property
    def num_bins(self) -> int:
        return self.failures.numel()

    def bin_of(self, dataset_clip_ids: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        local = torch.minimum(frames // self.bin_frames, self.bins_per_clip[dataset_clip_ids] - 1)
        return self.clip_bin_offset[dataset_clip_ids] + local

    def record_step(self, dataset_clip_ids: torch.Tensor, frames: torch.Tensor) -> None:
        bins = self.bin_of(dataset_clip_ids, frames)
        self.episodes.index_add_(0, bins, 1.0 / self.bin_length[bins].float())

    def record_failures(
        self, dataset_clip_ids: torch.Tensor, frames: torch.Tensor, failed: torch.Tensor | None = None
    ) -> None:
        """Add one failure per entry (or per entry where `failed` is true: no host sync)."""
        bins = self.bin_of(dataset_clip_ids, frames)
        weight = torch.ones_like(bins, dtype=self.failures.dtype) if failed is None else failed.to(self.failures.dtype)
        self.failures.index_add_(0, bins, weight)

    def bin_probabilities(self) -> torch.Tensor:
        """Sampling probability of every dataset bin (sums to 1)."""
        rate = self.failures / self.episodes.clamp_min(1e-6)
        rate = torch.minimum(rate, rate.mean() * self.max_over_mean)
        failure_part = rate / rate.sum().clamp_min(1e-12)
        uniform_part = torch.full_like(rate, 1.0 / rate.numel())
        prob = (1.0 - self.uniform_ratio) * failure_part + self.uniform_ratio * uniform_part
        # Same total weight per clip however many bins it has; bins weighted by their length.
        clip_of_bin = self.bin_clip
        length_weight = self.bin_length.float() / self.bin_length.float().mean()
        prob = prob * length_weight / self.bins_per_clip[clip_of_bin].float()
        return prob / prob.sum()

    def clip_probabilities(self) -> torch.Tensor:
        """Per-dataset-clip probability (sum of its bins): which clips deserve residency."""
        probs = torch.zeros(len(self.bins_per_clip), device=self.device)
        return probs.index_add_(0, self.bin_clip, self.bin_probabilities())

    def sample_starts(
        self, resident_dataset_ids: torch.Tensor, num: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw `num` (resident slot, start frame) pairs; only bins of resident clips compete."""
        prob = self.bin_probabilities()
        # Bins of each resident slot; a dataset clip resident twice gets two slots.
        res_bins_per_slot = self.bins_per_clip[resident_dataset_ids]
        slot_of_bin = torch.repeat_interleave(torch.arange(len(resident_dataset_ids), device=self.device), res_bins_per_slot)
        first = self.clip_bin_offset[resident_dataset_ids][slot_of_bin]
        local = torch.arange(len(slot_of_bin), device=self.device) - (torch.cumsum(res_bins_per_slot, 0) - res_bins_per_slot)[slot_of_bin]
        dataset_bin = first + local
        choice = torch.multinomial(prob[dataset_bin], num, replacement=True)
        bins = dataset_bin[choice]
        inside = (torch.rand(num, device=self.device) * self.bin_length[bins].float()).long()
        pullback = (torch.rand(num, device=self.device) * self.pullback_frames).long()
        frames = (self.bin_start[bins] + inside - pullback).clamp_min(0)
        return slot_of_bin[choice], frames

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"failures": self.failures.clone(), "episodes": self.episodes.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name in ("failures", "episodes"):
            value = state[name]
            if value.shape != getattr(self, name).shape:
                raise ValueError(
                    f"adaptive sampling state '{name}' has {tuple(value.shape)} bins but this "
                    f"dataset has {tuple(getattr(self, name).shape)}: the checkpoint was made "
                    "with another motion set or bin size"
                )
            getattr(self, name).copy_(value.to(self.device))
