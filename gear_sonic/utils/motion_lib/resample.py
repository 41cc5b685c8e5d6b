"""Resampling clips onto a fixed-rate time grid (lerp for vectors, slerp for quaternions)."""

from __future__ import annotations

import numpy as np

from gear_sonic.utils.np_quat import slerp


def target_times(num_frames: int, fps: float, target_fps: float) -> np.ndarray:
    """Grid 0, 1/target_fps, ... covering the clip; the last sample is the clip's last frame.

    When the duration is not a multiple of the target step, the final step is shorter so
    the clip's end pose is kept instead of being cut off.
    """
    duration = (num_frames - 1) / fps
    num_out = int(np.ceil(duration * target_fps - 1e-6)) + 1
    return np.minimum(np.arange(num_out) / target_fps, duration)


def _bracket(num_frames: int, fps: float, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source frame index below each time and the blend weight towards the next frame."""
    position = times * fps
    nearest = np.round(position)
    # Snap float noise so an on-grid time reproduces the stored frame exactly.
    position = np.where(np.abs(position - nearest) < 1e-9, nearest, position)
    index = np.clip(np.floor(position).astype(np.int64), 0, num_frames - 2)
    return index, position - index


def lerp_at(values: np.ndarray, fps: float, times: np.ndarray) -> np.ndarray:
    """Linear interpolation of (T, ...) values sampled at `fps`, evaluated at `times`."""
    index, alpha = _bracket(values.shape[0], fps, times)
    alpha = alpha.reshape((-1,) + (1,) * (values.ndim - 1))
    return values[index] * (1.0 - alpha) + values[index + 1] * alpha


def slerp_at(quats: np.ndarray, fps: float, times: np.ndarray) -> np.ndarray:
    """Spherical interpolation of (T, ..., 4) wxyz quaternions evaluated at `times`."""
    index, alpha = _bracket(quats.shape[0], fps, times)
    alpha = alpha.reshape((-1,) + (1,) * (quats.ndim - 2))
    return slerp(quats[index], quats[index + 1], alpha)
