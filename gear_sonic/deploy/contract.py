"""The deploy contract: metadata.json read, checked, and held as plain Python values.

metadata.json (written by gear_sonic/eval/onnx_export.py) says which robot the policy drives
(joint order, PD gains, default pose, action scale and clip), how the simulation steps
(physics dt, decimation), which observation terms make up each ONNX input (function, params,
per-step shape, history length, clip, scale) and what the tracking command reads from the
motion (tracked bodies, VR points, joint subsets, future-frame offsets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gear_sonic.deploy.errors import DeployInputError

METADATA_FILE = "metadata.json"
REQUIRED_KEYS = ("robot", "joint_names", "kp", "kd", "default_joint_pos", "action_scale",
                 "models", "sim", "observation_contract", "command")
PER_JOINT_KEYS = ("kp", "kd", "default_joint_pos", "action_scale")
EXPORT_HINT = "export it with `python gear_sonic/eval_agent_trl.py +checkpoint=PATH " \
              "+export_onnx_only=true` (or gear_sonic.deploy.bundle.write_deploy_bundle)"


@dataclass(frozen=True)
class ObsTerm:
    name: str
    func: str
    params: dict
    shape: tuple[int, ...]  # one step, before history
    history_length: int
    clip: tuple[float, float] | None
    scale: np.ndarray | None

    @property
    def size(self) -> int:
        """Flattened size of this term inside a concatenated group (history included)."""
        return int(np.prod(self.shape)) * max(1, self.history_length)


@dataclass(frozen=True)
class ObsGroup:
    name: str
    concatenate: bool
    terms: tuple[ObsTerm, ...]

    def input_shape(self) -> tuple[int, ...]:
        return (sum(t.size for t in self.terms),)


@dataclass
class DeployContract:
    directory: Path
    robot: str
    joint_names: list[str]
    kp: np.ndarray
    kd: np.ndarray
    default_joint_pos: np.ndarray
    action_scale: np.ndarray
    action_clip: float | None
    reference_relative_actions: bool
    physics_dt: float
    decimation: int
    groups: dict[str, ObsGroup]
    command: dict
    models: dict[str, dict]
    encoder_names: list[str]
    model_file: str | None = None
    model_name_prefix: str = ""
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def control_dt(self) -> float:
        return self.physics_dt * self.decimation

    def model_entry(self, stem: str) -> dict:
        if stem not in self.models:
            raise DeployInputError(str(self.directory / METADATA_FILE),
                                   f"no model {stem!r} (has {sorted(self.models)})",
                                   "choose --encoder among the exported encoders")
        return self.models[stem]

    def expected_input_shape(self, input_name: str) -> tuple[int, ...]:
        """Per-sample shape the contract gives an ONNX input: a whole group or one term."""
        if input_name in self.groups and self.groups[input_name].concatenate:
            return self.groups[input_name].input_shape()
        term = self.term(input_name)
        return term.shape

    def term(self, name: str) -> ObsTerm:
        for group in self.groups.values():
            if not group.concatenate:
                for term in group.terms:
                    if term.name == name:
                        return term
        raise DeployInputError(str(self.directory / METADATA_FILE),
                               f"observation_contract has no term or group {name!r}",
                               "re-export the ONNX models and metadata.json together")


def load_contract(deploy_dir: str | Path) -> DeployContract:
    """Read and check DEPLOY_DIR/metadata.json; raises DeployInputError naming the key."""
    deploy_dir = Path(deploy_dir)
    path = deploy_dir / METADATA_FILE
    if not deploy_dir.is_dir():
        raise DeployInputError(str(deploy_dir), "no such deploy folder", EXPORT_HINT)
    if not path.is_file():
        raise DeployInputError(str(path), "missing", EXPORT_HINT)
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DeployInputError(str(path), f"is not valid JSON ({exc})", EXPORT_HINT) from exc
    if not isinstance(meta, dict):
        raise DeployInputError(str(path), "is not a JSON object", EXPORT_HINT)
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise DeployInputError(str(path), f"lacks keys {missing}",
                               "it predates the deploy contract; " + EXPORT_HINT)
    try:
        return _contract(deploy_dir, path, meta)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, DeployInputError):
            raise
        raise DeployInputError(str(path), f"has a malformed entry ({exc!r})",
                               EXPORT_HINT) from exc


def _contract(deploy_dir: Path, path: Path, meta: dict) -> DeployContract:
    num_joints = len(meta["joint_names"])
    for key in PER_JOINT_KEYS:
        if len(meta[key]) != num_joints:
            raise DeployInputError(str(path), f"{key} has {len(meta[key])} values for "
                                   f"{num_joints} joints", "re-export metadata.json")
    groups = {name: _group(name, spec, path) for name, spec in meta["observation_contract"].items()}
    sim = meta["sim"]
    return DeployContract(
        directory=deploy_dir,
        robot=str(meta["robot"]),
        joint_names=list(meta["joint_names"]),
        kp=np.asarray(meta["kp"], np.float64),
        kd=np.asarray(meta["kd"], np.float64),
        default_joint_pos=np.asarray(meta["default_joint_pos"], np.float64),
        action_scale=np.asarray(meta["action_scale"], np.float64),
        action_clip=meta.get("action_clip"),
        reference_relative_actions=bool(meta.get("reference_relative_actions", False)),
        physics_dt=float(sim["physics_dt"]),
        decimation=int(sim["decimation"]),
        groups=groups,
        command=dict(meta["command"]),
        models=dict(meta["models"]),
        encoder_names=list(meta.get("encoder_names") or meta["command"].get("encoder_names", [])),
        model_file=meta.get("model_file"),
        model_name_prefix=str(meta.get("model_name_prefix", "")),
        raw=meta,
    )


def _group(name: str, spec: dict, path: Path) -> ObsGroup:
    try:
        terms = tuple(
            ObsTerm(
                name=t["name"], func=t["func"], params=dict(t.get("params") or {}),
                shape=tuple(int(d) for d in t["shape"]),
                history_length=int(t.get("history_length") or 0),
                clip=tuple(t["clip"]) if t.get("clip") else None,
                scale=None if t.get("scale") is None else np.asarray(t["scale"], np.float32),
            )
            for t in spec["terms"]
        )
    except (KeyError, TypeError) as exc:
        raise DeployInputError(str(path), f"observation_contract.{name} is malformed ({exc!r})",
                               "re-export metadata.json") from exc
    return ObsGroup(name=name, concatenate=bool(spec.get("concatenate", True)), terms=terms)


def check_session_inputs(contract: DeployContract, onnx_file: Path, inputs) -> None:
    """Every ONNX input must exist in the contract with the same per-sample shape."""
    for item in inputs:
        expected = contract.expected_input_shape(item.name)
        got = tuple(item.shape[1:])
        if any(isinstance(d, str) or d is None for d in got):
            continue  # a symbolic dim: nothing to compare
        if tuple(int(d) for d in got) != tuple(expected):
            raise DeployInputError(
                str(onnx_file), f"input {item.name!r} has size {list(got)} but metadata.json's "
                f"observation contract gives {list(expected)}",
                "export the ONNX models and metadata.json from the same checkpoint and config")
