"""ONNX export of a recurrent (GRU / LSTM) policy with its state as an explicit input and output.

The model is one step: `obs` (N, input_dim: the backbone's input groups concatenated in order)
and `state_in` (layers, N, state_size) -> `actions` (N, A, the Gaussian mean) and `state_out`.
A deployment loop feeds `state_out` back as the next `state_in`, starting from zeros and zeroing
an env's state when its episode restarts. For an LSTM the state is h and c joined on the last dim.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gear_sonic.trl.modules.recurrent_modules import RecurrentBackbone

OPSET = 17
INPUT_NAMES = ["obs", "state_in"]
OUTPUT_NAMES = ["actions", "state_out"]


class _RecurrentStep(nn.Module):
    def __init__(self, backbone: RecurrentBackbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, obs: torch.Tensor, state: torch.Tensor):
        return self.backbone.step(obs, state)


def export_recurrent_policy(actor: nn.Module, path: str | Path) -> Path:
    """Write `path` (.onnx) for an Actor whose backbone is a RecurrentBackbone."""
    backbone = getattr(actor, "backbone", actor)
    if not isinstance(backbone, RecurrentBackbone):
        kind = type(backbone).__name__
        raise TypeError(f"export_recurrent_policy needs a RecurrentBackbone, got {kind}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    step = _RecurrentStep(backbone).eval()
    args = (torch.zeros(2, backbone.input_dim), backbone.core.zero_state(2))
    dynamic = {"obs": {0: "batch"}, "actions": {0: "batch"}}
    dynamic.update({name: {1: "batch"} for name in ("state_in", "state_out")})
    with torch.no_grad():
        torch.onnx.export(
            step, args, str(path), input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
            dynamic_axes=dynamic, opset_version=OPSET, dynamo=False,
        )
    return path
