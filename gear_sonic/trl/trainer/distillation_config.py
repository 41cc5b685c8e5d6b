"""Settings of teacher-student distillation (the `distillation` node of a student preset), checked
before training: the student may only read what the real robot measures.

A student preset composes the teacher's network config under `distillation.teacher` and names
the teacher's weights with `+teacher_checkpoint=PATH`; `distillation_settings` (Hydra target of
the node) turns it into a `DistillationConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from gear_sonic.checkpoint import CheckpointError, check_state_matches

LOSSES = ("mse", "huber")
# Observation functions that read simulator-only state (by the last part of their import path),
# and for builtin_sensor the sensor names that do.
PRIVILEGED_FUNCS = ("base_lin_vel", "geom_friction", "body_mass")
PRIVILEGED_SENSORS = ("robot/imu_lin_vel",)


@dataclass
class DistillationConfig:
    teacher_checkpoint: str | None
    teacher: dict  # {"actor": <actor config>}, the teacher's actor_critic node
    observations: dict = field(default_factory=dict)  # manager_env.observations
    student_input_groups: Sequence[str] = ()  # actor_critic.actor.backbone.input_groups
    student_group: str = "student_obs"
    privileged_terms: Sequence[str] = ("base_lin_vel", "foot_friction", "base_mass")
    loss: str = "mse"  # mse | huber, on the action means
    huber_delta: float = 1.0
    # Probability that an env executes the teacher's action in a step (DAgger's beta), annealed
    # linearly from `teacher_forcing_start` to `teacher_forcing_end` over `teacher_forcing_iterations`.
    teacher_forcing_start: float = 0.0
    teacher_forcing_end: float = 0.0
    teacher_forcing_iterations: int = 1
    student_action_noise: float = 0.0  # std of Gaussian noise on the executed student action

    def teacher_forcing(self, iteration: int) -> float:
        frac = min(max(iteration / max(self.teacher_forcing_iterations, 1), 0.0), 1.0)
        start, end = self.teacher_forcing_start, self.teacher_forcing_end
        return start + (end - start) * frac

    def validate(self) -> None:
        """Every check, each a one-line error naming the key (run by DistillationTrainer, outside
        Hydra's instantiate, which would bury the message in its own exception)."""
        if not self.teacher_checkpoint:
            raise ValueError(
                "distillation needs the teacher's weights: add +teacher_checkpoint=PATH (a last.pt "
                "or model_step_*.pt of a go2_velocity run)"
            )
        if not Path(str(self.teacher_checkpoint)).is_file():
            raise FileNotFoundError(f"+teacher_checkpoint={self.teacher_checkpoint}: no such file")
        if "actor" not in (self.teacher or {}):
            raise ValueError(
                "distillation.teacher.actor is missing: compose the teacher's actor_critic"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"distillation.loss={self.loss!r}: choose one of {list(LOSSES)}")
        for name in ("teacher_forcing_start", "teacher_forcing_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"distillation.{name} must be in [0, 1], got {getattr(self, name)}"
                )
        check_student_inputs(self.observations, list(self.student_input_groups), self)


def distillation_settings(
    teacher_checkpoint: str | None, teacher: Mapping, **options
) -> DistillationConfig:
    """Hydra target of `distillation` -> DistillationConfig (plain containers; checked by
    `validate`)."""
    options = {key: _plain(value) for key, value in options.items()}
    return DistillationConfig(teacher_checkpoint, _plain(teacher), **options)


def check_student_inputs(
    observations: Mapping, input_groups: Sequence[str], cfg: DistillationConfig
) -> None:
    """The student actor reads only `cfg.student_group`, and that group holds no privileged term."""
    others = [g for g in input_groups if g != cfg.student_group]
    if others:
        raise ValueError(
            f"actor_critic.actor.backbone.input_groups={list(input_groups)}: the student may read "
            f"only distillation.student_group={cfg.student_group!r}, not {others}"
        )
    if cfg.student_group not in observations:
        raise ValueError(
            f"distillation.student_group={cfg.student_group!r} is not an observation group "
            f"(manager_env.observations has {sorted(observations)})"
        )
    terms = observations[cfg.student_group].get("terms") or {}
    for name, entry in terms.items():
        reason = privileged_reason(name, entry, cfg.privileged_terms)
        if reason:
            raise ValueError(
                f"manager_env.observations.{cfg.student_group}.terms.{name} is privileged "
                f"({reason}): a real robot does not measure it; remove it from the student's group"
            )


def privileged_reason(name: str, entry, privileged_names: Sequence[str]) -> str | None:
    if name in privileged_names:
        return "listed in distillation.privileged_terms"
    if not isinstance(entry, Mapping):
        return None
    func = str(entry.get("func", "")).rsplit(".", 1)[-1]
    if func in PRIVILEGED_FUNCS:
        return f"func {func} reads simulator state"
    sensor = (entry.get("params") or {}).get("sensor_name")
    if func == "builtin_sensor" and sensor in PRIVILEGED_SENSORS:
        return f"sensor {sensor} reads simulator state"
    return None


def check_teacher_state(
    actor_state: Mapping,
    teacher_actor,
    obs_shapes: Mapping,
    path: str | Path,
    term_names: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """One line naming why a checkpoint's actor is not this teacher: the task it was trained on
    (observation terms in its config.yaml, when there is one) or the parameter that differs."""
    groups = list(getattr(teacher_actor.backbone, "input_terms", []))
    term_names = term_names or {}
    trained_cfg = _config_beside(Path(path))
    ours = {g: obs_shapes.get(g) for g in groups}
    if trained_cfg is not None:
        trained_obs = OmegaConf.select(trained_cfg, "manager_env.observations") or {}
        for group in groups:
            if group not in trained_obs:
                raise CheckpointError(
                    f"teacher checkpoint {path}: its run has no observation group {group!r} "
                    f"(it has {sorted(trained_obs)}): it was trained on another task"
                )
            theirs = list(trained_obs[group].get("terms") or {})
            mine = list(term_names.get(group, theirs))
            if theirs != mine:
                missing = [t for t in theirs if t not in mine]
                extra = [t for t in mine if t not in theirs]
                raise CheckpointError(
                    f"teacher checkpoint {path}: observation group {group!r} was trained with "
                    f"terms {theirs} but this env has {mine} (missing {missing}, extra {extra}, "
                    "or another order)"
                )
    try:
        check_state_matches(teacher_actor.state_dict(), actor_state, f"teacher checkpoint {path}")
    except CheckpointError as err:
        raise CheckpointError(f"{err} (this teacher reads {ours})") from None


def _config_beside(checkpoint: Path):
    for candidate in (checkpoint.parent / "config.yaml", checkpoint.parent.parent / "config.yaml"):
        if candidate.is_file():
            return OmegaConf.load(candidate)
    return None


def _plain(value):
    if isinstance(value, DictConfig) or OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value
