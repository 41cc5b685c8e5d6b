"""Quaternion helpers (w, x, y, z) in torch, used by on-device queries.

Kept apart from quat.py so the load-time tools (e.g. the inspect CLI) do not import torch.
"""

from __future__ import annotations

import torch

from gear_sonic.utils.np_quat import SLERP_LINEAR_DOT


def slerp_torch(q0: torch.Tensor, q1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Batched slerp of (..., 4) wxyz quaternions; `t` has the leading shape (...)."""
    t = t.unsqueeze(-1)
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0.0, -q1, q1)
    dot = dot.abs()
    angle = torch.acos(dot.clamp(-1.0, 1.0))
    linear = dot > SLERP_LINEAR_DOT
    safe_sin = torch.where(linear, torch.ones_like(angle), torch.sin(angle))
    w0 = torch.where(linear, 1.0 - t, torch.sin((1.0 - t) * angle) / safe_sin)
    w1 = torch.where(linear, t, torch.sin(t * angle) / safe_sin)
    out = w0 * q0 + w1 * q1
    return out / out.norm(dim=-1, keepdim=True)
