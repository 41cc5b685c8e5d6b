"""ONNX export of a recurrent (GRU / LSTM) policy with its state as an explicit input and output.

The model is one control step. Inputs: the backbone's observation groups, each named after its
group (`actor_obs` (N, D), as the MLP export names them), and `state_in` (layers, N,
state_size). Outputs: `actions` (N, A, the Gaussian mean) and `state_out`, same shape as
`state_in`. A deployment loop feeds `state_out` back as the next `state_in`, starting from zeros
and zeroing an env's state when its episode restarts (as training does). For an LSTM the state
is h and c joined on the last dim. `state_description` is what metadata.json says about it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from gear_sonic.trl.modules.recurrent_modules import RecurrentBackbone, _group_input

OPSET = 17
STATE_INPUT = "state_in"
STATE_OUTPUT = "state_out"
ACTIONS_OUTPUT = "actions"
STATE_BATCH_AXIS = 1  # (layers, batch, state_size)


class RecurrentStep(nn.Module):
    """(obs groups..., state_in) -> (action mean, state_out), stateless."""

    def __init__(self, backbone: RecurrentBackbone):
        super().__init__()
        self.backbone = backbone
        self.group_names = list(backbone.input_groups)
        self.input_names = [*self.group_names, STATE_INPUT]

    def forward(self, *inputs: torch.Tensor):
        *groups, state = inputs
        obs = _group_input(dict(zip(self.group_names, groups)), self.group_names)
        return self.backbone.step(obs, state)


def recurrent_backbone_of(actor: nn.Module) -> RecurrentBackbone | None:
    backbone = getattr(actor, "backbone", actor)
    return backbone if isinstance(backbone, RecurrentBackbone) else None


def state_shape(backbone: RecurrentBackbone) -> list[int]:
    """The state's shape with -1 for the batch: [layers, -1, state_size]."""
    return [backbone.core.num_layers, -1, backbone.core.state_size]


def state_description(backbone: RecurrentBackbone) -> dict:
    """metadata.json's `recurrent_state`: names, shape and how a deploy loop handles it."""
    core = backbone.core
    layout = ("h and c of the LSTM joined on the last dim (h first)" if core.cell == "lstm"
              else "the GRU's hidden state")
    return {
        "input": STATE_INPUT,
        "output": STATE_OUTPUT,
        "shape": state_shape(backbone),
        "batch_axis": STATE_BATCH_AXIS,
        "dtype": "float32",
        "cell": core.cell,
        "hidden_size": core.hidden_size,
        "layout": layout,
        "reset": "zeros at the start of every episode; feed state_out back as the next "
                 "step's state_in",
    }


def model_entry(backbone: RecurrentBackbone, file_name: str) -> dict:
    """The `models` entry of metadata.json for the exported step model."""
    inputs = {g: [-1, *shape] for g, shape in backbone.input_shapes.items()}
    inputs[STATE_INPUT] = state_shape(backbone)
    return {"file": file_name, "inputs": inputs,
            "outputs": {ACTIONS_OUTPUT: [-1, backbone.num_actions],
                        STATE_OUTPUT: state_shape(backbone)},
            "recurrent_state": state_description(backbone)}


def export_recurrent_policy(actor: nn.Module, path: str | Path) -> Path:
    """Write `path` (.onnx) for an Actor whose backbone is a RecurrentBackbone."""
    backbone = recurrent_backbone_of(actor)
    if backbone is None:
        kind = type(getattr(actor, "backbone", actor)).__name__
        raise TypeError(f"export_recurrent_policy needs a RecurrentBackbone, got {kind}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    step = RecurrentStep(backbone)
    batch, device = 2, next(backbone.parameters()).device
    args = (*(torch.zeros(batch, *shape, device=device)
              for shape in backbone.input_shapes.values()),
            backbone.core.zero_state(batch, device))
    dynamic = {name: {0: "batch"} for name in [*step.group_names, ACTIONS_OUTPUT]}
    dynamic.update({name: {STATE_BATCH_AXIS: "batch"} for name in (STATE_INPUT, STATE_OUTPUT)})
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # torch warns about LSTM batch sizes unless h0/c0 are inputs: here they are.
            warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch")
            torch.onnx.export(
                step, args, str(path), input_names=step.input_names,
                output_names=[ACTIONS_OUTPUT, STATE_OUTPUT], dynamic_axes=dynamic,
                opset_version=OPSET, dynamo=False,
            )
    finally:
        backbone.train(was_training)
    return path
