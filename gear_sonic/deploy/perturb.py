"""Robustness trials on the deploy loop (torch-free): one perturbation at one level per trial.

The perturbations and their units are those of gear_sonic/eval/robustness.py (which runs the
same trials batched on the training env); this module applies them to plain MuJoCo:

* push: a horizontal base-velocity change of `value` m/s in a random direction at a random step;
* friction: every geom's sliding friction times `value`;
* mass: `value` kg added to one body (set_const recomputes the derived inertias);
* delay: the action used is the one the policy gave `value` control steps earlier (zeros first);
* obs_noise: Gaussian noise on each policy input term, std = `value` x that term's RMS.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import mujoco
import numpy as np

from gear_sonic.deploy.contract import DeployContract
from gear_sonic.deploy.errors import DeployInputError

KINDS = ("push", "friction", "mass", "delay", "obs_noise")
MODEL_KINDS = ("friction", "mass")
# Inputs that are selectors, not measurements: never noised.
NOISELESS_TERMS = ("encoder_index",)


@dataclass(frozen=True)
class TrialOutcome:
    fell: bool
    steps: int  # control steps played before the fall (all of them when it did not fall)
    horizon: int  # control steps the trial asked for


def trial_plan(rng: np.random.Generator, horizon: int) -> tuple[int, np.ndarray]:
    """Push step in [0, horizon) and a unit horizontal direction, drawn the same way as the
    env backend draws them (uniform step, uniform angle)."""
    step = int(rng.integers(0, max(1, horizon)))
    angle = float(rng.uniform(0.0, 2.0 * np.pi))
    return step, np.array([np.cos(angle), np.sin(angle)])


def term_slices(contract: DeployContract, input_name: str) -> list[tuple[str, slice]]:
    """(term name, flat slice) of each term inside one ONNX input (a dict-group term is a
    whole input)."""
    group = contract.groups.get(input_name)
    if group is None or not group.concatenate:
        return [(input_name, slice(None))]
    out, start = [], 0
    for term in group.terms:
        out.append((term.name, slice(start, start + term.size)))
        start += term.size
    return out


def add_obs_noise(feeds: dict[str, np.ndarray], contract: DeployContract, fraction: float,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per term: noise ~ N(0, (fraction * RMS of that term's values)^2)."""
    noisy = {}
    for name, value in feeds.items():
        if not np.issubdtype(value.dtype, np.floating):
            noisy[name] = value
            continue
        flat = value.reshape(value.shape[0], -1).copy()
        for term, part in term_slices(contract, name):
            if term in NOISELESS_TERMS:
                continue
            rms = np.sqrt(np.mean(flat[:, part] ** 2, axis=1, keepdims=True))
            flat[:, part] += fraction * rms * rng.standard_normal(flat[:, part].shape)
        noisy[name] = flat.reshape(value.shape).astype(value.dtype)
    return noisy


class ModelPerturbation:
    """Friction scale or added mass on the loop's MjModel; `restore()` puts the nominal back."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, mass_body: str):
        self.model, self.data = model, data
        self.friction = model.geom_friction.copy()
        self.mass = model.body_mass.copy()
        self.inertia = model.body_inertia.copy()
        body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, mass_body)
        if body < 0:
            raise DeployInputError("mass_body", f"no body {mass_body!r} in the MuJoCo "
                                   "model", "name one of the robot's bodies")
        self.body = body

    def apply(self, kind: str, value: float) -> None:
        self.restore()
        if kind == "friction":
            self.model.geom_friction[:, 0] = self.friction[:, 0] * value
        elif kind == "mass":
            self.model.body_mass[self.body] = self.mass[self.body] + value
            mujoco.mj_setConst(self.model, self.data)

    def restore(self) -> None:
        self.model.geom_friction[:] = self.friction
        self.model.body_mass[:] = self.mass
        self.model.body_inertia[:] = self.inertia
        mujoco.mj_setConst(self.model, self.data)


def run_trial(loop, kind: str, value: float, rng: np.random.Generator, horizon: int,
              perturbation: ModelPerturbation) -> TrialOutcome:
    """One trial of `loop` (a DeployLoop or a locomotion loop with the same surface)."""
    push_step, push_dir = trial_plan(rng, horizon)
    perturbation.apply(kind, value if kind in MODEL_KINDS else 0.0)
    try:
        loop.start()
        delay = int(value) if kind == "delay" else 0
        pending = deque([np.zeros_like(loop.last_action)] * delay)
        robot = loop.robot
        for step in range(horizon):
            feeds = loop.observe()
            if kind == "obs_noise" and value > 0:
                feeds = add_obs_noise(feeds, loop.contract, float(value), rng)
            pending.append(loop.act(feeds))
            action = pending.popleft()
            if kind == "push" and step == push_step:
                robot.data.qvel[robot.root_qvel:robot.root_qvel + 2] += value * push_dir
            frame = loop.frame
            loop.apply(action)
            if loop.fell(frame):
                return TrialOutcome(fell=True, steps=step, horizon=horizon)
        return TrialOutcome(fell=False, steps=horizon, horizon=horizon)
    finally:
        perturbation.restore()
