"""MotionLib: a dataset of reference motions, with a resident subset queried on device."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import torch

from .clip import RawClip
from .conversion import ClipFrames, convert_clip
from .errors import MotionDataError
from .kinematics import RobotKinematics
from .quat_torch import slerp_torch
from .readers import list_motion_files, read_motion_file

logger = logging.getLogger(__name__)
# Below this many items progress lines are more noise than help.
_PROGRESS_MIN_ITEMS = 20
_SMPL_SHAPE = (24, 3)


@dataclass
class MotionState:
    """Reference state; every field has the query's leading shape."""

    joint_pos: torch.Tensor  # (..., J)
    joint_vel: torch.Tensor  # (..., J)
    body_pos_w: torch.Tensor  # (..., B, 3)
    body_quat_w: torch.Tensor  # (..., B, 4) wxyz
    body_lin_vel_w: torch.Tensor  # (..., B, 3)
    body_ang_vel_w: torch.Tensor  # (..., B, 3)
    smpl_joints: torch.Tensor  # (..., 24, 3); zeros where the clip has none


class MotionLib:
    """All clips live on the host at `target_fps`; a resident subset lives on `device`.

    Query `clip_ids` index the resident subset (0..num_clips-1), not the dataset.
    """

    def __init__(
        self,
        motion_file: str | Path,
        mj_model: mujoco.MjModel,
        body_names: Sequence[str],
        device: str | torch.device = "cpu",
        target_fps: float = 50.0,
        key_regex: str | None = None,
        remove_key_prefixes: Sequence[str] = (),
        max_unique_motions: int | None = None,
        max_resident_clips: int | None = None,
        seed: int = 0,
        trust_pickle: bool = False,
    ):
        """`trust_pickle=True` unpickles PKLs without the allow-list (trusted files only)."""
        if not np.isfinite(target_fps) or target_fps <= 0:
            raise ValueError(f"target_fps must be finite and > 0, got {target_fps}")
        self.device = torch.device(device)
        self.fps = float(target_fps)
        self.dt = 1.0 / self.fps
        if max_resident_clips is not None and max_resident_clips < 1:
            raise ValueError(f"max_resident_clips must be >= 1 or None, got {max_resident_clips}")
        self.max_resident_clips = max_resident_clips
        self._kin = RobotKinematics(mj_model)
        unknown = [n for n in body_names if n not in self._kin.body_names]
        if unknown:
            raise MotionDataError(
                f"requested bodies {unknown} are not in the robot model", field="body_names",
                fix=f"choose from {self._kin.body_names}",
            )
        self.body_names = list(body_names)
        self._generator = torch.Generator().manual_seed(seed)

        raw = self._read_all(motion_file, trust_pickle)
        raw = _filter_clips(raw, key_regex, remove_key_prefixes, max_unique_motions, seed)
        if not raw:
            raise MotionDataError(
                "no clips left after filtering", source=str(motion_file), field="key_regex",
                fix="relax key_regex / remove_key_prefixes",
            )
        # Convert and drop each raw clip in turn, so raw and converted data never coexist in full.
        raw.reverse()
        self._frames: list[ClipFrames] | None = []
        for _ in _progress(range(len(raw)), "Converting motions"):
            self._frames.append(convert_clip(raw.pop(), self._kin, self.body_names, self.fps))
        self.keys: list[str] = [f.key for f in self._frames]
        self.num_total_clips = len(self._frames)
        # Per dataset clip (not just resident ones), e.g. for failure-binned start sampling.
        self.dataset_num_frames = torch.tensor(
            [f.num_frames for f in self._frames], dtype=torch.long, device=self.device
        )

        if max_resident_clips is None or max_resident_clips >= self.num_total_clips:
            self.load_resident(range(self.num_total_clips))
            # Everything is resident and nothing will be re-drawn: the per-clip host arrays
            # would only double the memory.
            self._frames = None
        else:
            self.sample_resident()
        self._log_summary(motion_file)

    # -----------------------------------------------------------------------------------------
    # Resident subset

    def load_resident(self, dataset_ids: Sequence[int] | torch.Tensor) -> None:
        """Make these dataset clips resident (duplicates allowed), in this order."""
        if torch.is_tensor(dataset_ids):
            dataset_ids = dataset_ids.tolist()
        ids = [int(i) for i in dataset_ids]
        if not ids:
            raise ValueError("load_resident needs at least one dataset id")
        bad = [i for i in ids if not 0 <= i < self.num_total_clips]
        if bad:
            raise IndexError(f"dataset ids {bad} outside [0, {self.num_total_clips})")
        if self._frames is None:
            raise RuntimeError(
                "every clip is already resident and the host copies were released to save memory; "
                "construct the MotionLib with max_resident_clips < the dataset size to re-draw subsets"
            )
        frames = [self._frames[i] for i in ids]
        counts = np.array([f.num_frames for f in frames])

        def stack(field: str) -> torch.Tensor:
            host = np.concatenate([getattr(f, field) for f in frames], axis=0)
            return torch.from_numpy(host).to(self.device, torch.float32)

        self._joint_pos = stack("joint_pos")
        self._joint_vel = stack("joint_vel")
        self._body_pos_w = stack("body_pos_w")
        self._body_quat_w = stack("body_quat_w")
        self._body_lin_vel_w = stack("body_lin_vel_w")
        self._body_ang_vel_w = stack("body_ang_vel_w")
        smpl = [f.smpl_joints if f.smpl_joints is not None
                else np.zeros((f.num_frames,) + _SMPL_SHAPE, np.float32) for f in frames]
        self._smpl_joints = torch.from_numpy(np.concatenate(smpl)).to(self.device, torch.float32)

        self.resident_ids = torch.tensor(ids, dtype=torch.long, device=self.device)
        self.num_clips = len(ids)
        self.clip_num_frames = torch.from_numpy(counts).to(self.device, torch.long)
        self.clip_start = torch.cumsum(self.clip_num_frames, 0) - self.clip_num_frames
        self.clip_duration_s = (self.clip_num_frames - 1).to(torch.float32) / self.fps
        self.clip_has_smpl = torch.tensor(
            [f.smpl_joints is not None for f in frames], dtype=torch.bool, device=self.device
        )

    def sample_resident(
        self, clip_weights: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> None:
        """Draw `max_resident_clips` dataset ids (with replacement, by `clip_weights` over the
        dataset) and make them resident; a no-op when the whole dataset fits."""
        if self.max_resident_clips is None or self.max_resident_clips >= self.num_total_clips:
            return
        if clip_weights is None:
            clip_weights = torch.ones(self.num_total_clips)
        clip_weights = torch.as_tensor(clip_weights, dtype=torch.float64).cpu()
        if clip_weights.shape != (self.num_total_clips,):
            raise ValueError(
                f"clip_weights has shape {tuple(clip_weights.shape)}, "
                f"expected ({self.num_total_clips},) (one weight per dataset clip)"
            )
        ids = torch.multinomial(
            clip_weights, self.max_resident_clips, replacement=True,
            generator=generator if generator is not None else self._generator,
        )
        self.load_resident(ids)

    # -----------------------------------------------------------------------------------------
    # Queries (vectorised; clip_ids index the resident subset)

    def state_at_frames(self, clip_ids: torch.Tensor, frames: torch.Tensor) -> MotionState:
        """States at integer frames, clamped to each clip's [0, n-1]."""
        clip_ids, frames = self._align(clip_ids, frames)
        last = self.clip_num_frames[clip_ids] - 1
        frames = torch.minimum(frames.long().clamp(min=0), last)
        return self._gather(self.clip_start[clip_ids] + frames)

    def state_at_times(self, clip_ids: torch.Tensor, times_s: torch.Tensor) -> MotionState:
        """States at times (s) from clip start, interpolated between frames, clamped to the end."""
        clip_ids, times_s = self._align(clip_ids, times_s)
        num_frames = self.clip_num_frames[clip_ids]
        position = (times_s.to(torch.float32) * self.fps).clamp(min=0.0)
        position = torch.minimum(position, (num_frames - 1).to(torch.float32))
        # Clips have >= 2 frames, so frame0 + 1 is always valid.
        frame0 = torch.minimum(position.floor().long(), num_frames - 2)
        alpha = position - frame0
        index0 = self.clip_start[clip_ids] + frame0
        a, b = self._gather(index0), self._gather(index0 + 1)

        def lerp(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            w = alpha.reshape(alpha.shape + (1,) * (x.dim() - alpha.dim()))
            return x + (y - x) * w

        body_alpha = alpha.unsqueeze(-1).expand(a.body_quat_w.shape[:-1])
        return MotionState(
            joint_pos=lerp(a.joint_pos, b.joint_pos),
            joint_vel=lerp(a.joint_vel, b.joint_vel),
            body_pos_w=lerp(a.body_pos_w, b.body_pos_w),
            body_quat_w=slerp_torch(a.body_quat_w, b.body_quat_w, body_alpha),
            body_lin_vel_w=lerp(a.body_lin_vel_w, b.body_lin_vel_w),
            body_ang_vel_w=lerp(a.body_ang_vel_w, b.body_ang_vel_w),
            smpl_joints=lerp(a.smpl_joints, b.smpl_joints),
        )

    def _align(self, clip_ids, query) -> tuple[torch.Tensor, torch.Tensor]:
        """Broadcast clip ids against the query, aligning leading dims ((N,) with (N, K))."""
        clip_ids = torch.as_tensor(clip_ids, dtype=torch.long, device=self.device)
        query = torch.as_tensor(query, device=self.device)
        while clip_ids.dim() < query.dim():
            clip_ids = clip_ids.unsqueeze(-1)
        shape = torch.broadcast_shapes(clip_ids.shape, query.shape)
        return clip_ids.expand(shape), query.expand(shape)

    def _gather(self, index: torch.Tensor) -> MotionState:
        return MotionState(
            joint_pos=self._joint_pos[index],
            joint_vel=self._joint_vel[index],
            body_pos_w=self._body_pos_w[index],
            body_quat_w=self._body_quat_w[index],
            body_lin_vel_w=self._body_lin_vel_w[index],
            body_ang_vel_w=self._body_ang_vel_w[index],
            smpl_joints=self._smpl_joints[index],
        )

    # -----------------------------------------------------------------------------------------
    # Loading helpers

    def _read_all(self, motion_file: str | Path, trust_pickle: bool) -> list[RawClip]:
        files = list_motion_files(motion_file)
        clips = [
            clip for f in _progress(files, "Reading motion files")
            for clip in read_motion_file(f, self._kin.num_joints, trust_pickle)
        ]
        seen: dict[str, str] = {}
        for clip in clips:
            if clip.key in seen:
                raise MotionDataError(
                    f"appears in both '{seen[clip.key]}' and '{clip.source}'",
                    source=clip.source, clip_key=clip.key, field="key",
                    fix="rename one of the clips so keys are unique",
                )
            seen[clip.key] = clip.source
        return clips

    def _log_summary(self, motion_file: str | Path) -> None:
        num_frames = int(self.clip_num_frames.sum())
        seconds = float(self.clip_duration_s.sum())
        num_smpl = int(self.clip_has_smpl.sum())
        logger.info(
            "%d resident clips (%d in dataset), %d frames, %.1f s at %g Hz, %d with SMPL joints, from %s",
            self.num_clips, self.num_total_clips, num_frames, seconds, self.fps, num_smpl, motion_file,
        )


def _filter_clips(
    clips: list[RawClip],
    key_regex: str | None,
    remove_key_prefixes: Sequence[str],
    max_unique_motions: int | None,
    seed: int,
) -> list[RawClip]:
    """Keep clips whose key full-matches `key_regex` and starts with none of the prefixes,
    then a seeded random subset of at most `max_unique_motions` (in original order)."""
    if key_regex is not None:
        pattern = re.compile(key_regex)
        clips = [c for c in clips if pattern.fullmatch(c.key)]
    prefixes = tuple(remove_key_prefixes)
    if prefixes:
        clips = [c for c in clips if not c.key.startswith(prefixes)]
    if max_unique_motions is not None and len(clips) > max_unique_motions:
        keep = np.random.default_rng(seed).choice(len(clips), max_unique_motions, replace=False)
        clips = [clips[i] for i in sorted(keep)]
    return clips


def _progress(items: Sequence, description: str) -> Iterable:
    """Yield the items, logging `description: k/n` at every tenth of a long sequence."""
    total = len(items)
    step = max(1, total // 10)
    for done, item in enumerate(items, start=1):
        yield item
        if total > _PROGRESS_MIN_ITEMS and (done % step == 0 or done == total):
            logger.info("%s: %d/%d", description, done, total)
