"""AMP learner settings (the `amp:` config section), checked once at start-up."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from gear_sonic.envs.manager_env.mdp.amp_features import TERM_WIDTHS, AMPFeatureSpec


@dataclass(frozen=True)
class AMPSettings:
    motion_file: str = "data/motions"  # expert clips: a file or folder
    clips: tuple[str, ...] = ("*",)  # shell patterns on clip keys
    features: AMPFeatureSpec = field(default_factory=AMPFeatureSpec)
    style_weight: float = 1.0  # total reward = task + style_weight * style * step_dt
    reward_type: str = "clip"  # clip: clip(D, 0, 1) | amp: max(0, 1 - 0.25 (D - 1)^2)
    hidden_dims: tuple[int, ...] = (1024, 512, 256)
    spectral_norm: bool = True
    layer_norm: bool = False
    learning_rate: float = 1.0e-4
    r1_gamma: float = 5.0
    input_noise_std: float = 0.02  # on normalised inputs, discriminator updates only
    updates_per_iteration: int = 4
    warmup_updates: int = 0  # before iteration 1: updates against one rollout of the initial policy
    batch_size: int = 512  # per side (expert and policy)
    replay_capacity: int = 100_000
    historical_share: float = 0.5  # share of policy samples drawn from the replay buffer
    # Floor of the expert std used to normalise: one number, or {term: floor} in each term's units
    # (a DOF the clips hold still would otherwise let D tell any motion of it from the clips).
    norm_std_min: float | dict = 0.05
    action_filter_alpha: float = 1.0  # a <- alpha * a + (1 - alpha) * a_prev; 1 = no filter
    contact_sensor: str = "feet_contact"

    def __post_init__(self):
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(f"amp.{message}")

        need(
            self.reward_type in ("clip", "amp"),
            f"reward_type={self.reward_type!r}: use clip or amp",
        )
        need(0.0 <= self.historical_share <= 1.0, "historical_share must be in [0, 1]")
        need(0.0 < self.action_filter_alpha <= 1.0, "action_filter_alpha must be in (0, 1]")
        for name in ("updates_per_iteration", "batch_size", "replay_capacity"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        need(self.warmup_updates >= 0, f"warmup_updates must be >= 0, got {self.warmup_updates}")
        need(self.learning_rate > 0 and self.r1_gamma >= 0, "learning_rate > 0 and r1_gamma >= 0")
        floors = self.norm_std_min
        # A map may keep entries of unused terms (a dropped term needs no edit of the map).
        if isinstance(floors, dict):
            unknown = sorted(set(floors) - set(TERM_WIDTHS))
            missing = [t for t in self.features.terms if t not in floors]
            need(
                not unknown and not missing,
                f"norm_std_min: unknown terms {unknown}, no floor for {missing}; give a floor "
                f"for each of amp.features.terms {list(self.features.terms)} (or one number)",
            )
            floors = min(floors.values())
        need(floors > 0, f"norm_std_min must be > 0, got {self.norm_std_min}")


def amp_settings(**values) -> AMPSettings:
    """Hydra target of the `amp:` section; unknown keys name the override to fix."""
    return settings_from_mapping(values)


def settings_from_mapping(values: Mapping) -> AMPSettings:
    values = {k: v for k, v in dict(values).items() if not str(k).startswith("_")}
    known = {f.name for f in dataclasses.fields(AMPSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown amp keys {[f'amp.{k}' for k in unknown]}; valid: {sorted(known)}"
        )
    feature_values = dict(values.pop("features", None) or {})
    feature_known = {f.name for f in dataclasses.fields(AMPFeatureSpec)}
    bad = sorted(set(feature_values) - feature_known)
    if bad:
        raise ValueError(
            f"unknown amp.features keys {[f'amp.features.{k}' for k in bad]}; "
            f"valid: {sorted(feature_known)}"
        )
    for key in ("terms", "foot_bodies"):
        if key in feature_values:
            feature_values[key] = tuple(feature_values[key])
    if isinstance(values.get("norm_std_min"), Mapping):
        values["norm_std_min"] = {str(k): float(v) for k, v in values["norm_std_min"].items()}
    for key in ("clips", "hidden_dims"):
        if key in values:
            items = values[key]
            values[key] = (items,) if isinstance(items, str) else tuple(items)
    return AMPSettings(features=AMPFeatureSpec(**feature_values), **values)
