"""Every PPO hyper-parameter in one dataclass, read from the `algo.config` node with strict checks:
`from_mapping` rejects every key it does not know, naming the full key. (The networks live in
the `actor_critic` node.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

SCHEDULES = ("adaptive", "fixed")


@dataclass
class PPOConfig:
    # Rollout and batch layout.
    num_steps_per_env: int = 24
    num_learning_epochs: int = 5
    num_mini_batches: int = 4  # split over envs: each mini-batch = all steps of some envs
    num_learning_iterations: int = 100_000
    # Recurrent policies: truncated BPTT length of a mini-batch sequence (0 = the whole rollout).
    sequence_length: int = 0
    # Returns.
    gamma: float = 0.99
    lam: float = 0.95
    normalize_advantages: bool = True
    # Losses.
    clip_param: float = 0.2
    value_clip_param: float = 0.2
    use_clipped_value_loss: bool = True
    value_loss_coef: float = 1.0
    entropy_coef: float = 0.01
    # Optimisation: Adam for the actor (KL-adaptive LR) and the critic (fixed LR).
    actor_learning_rate: float = 2e-5
    critic_learning_rate: float = 1e-3
    schedule: str = "adaptive"
    desired_kl: float = 0.01
    lr_min: float = 1e-5
    lr_max: float = 2e-4
    lr_adapt_factor: float = 1.5
    max_grad_norm: float = 0.1  # applied to the actor and the critic gradients separately
    # Running mean/std of the critic input, updated from every rollout.
    update_critic_normalizer: bool = True
    # Fresh start only: give every env a random elapsed episode time (rsl_rl's
    # init_at_random_ep_len), so time-outs, and the episode statistics logged with them, spread
    # over iterations instead of all envs ending together.
    random_initial_episode_length: bool = False

    def __post_init__(self) -> None:
        self.validate()

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_mapping(
        cls,
        mapping: Mapping,
        key_prefix: str = "algo.config",
    ) -> PPOConfig:
        """Build from a dict / DictConfig; unknown keys and wrong types raise a ValueError."""
        valid = {f.name: f for f in fields(cls)}
        values = {}
        for key in mapping:
            full = f"{key_prefix}.{key}" if key_prefix else str(key)
            if key not in valid:
                raise ValueError(f"unknown PPO parameter {full!r}; valid keys: {sorted(valid)}")
            values[key] = _check_type(full, mapping[key], valid[key].type)
        try:
            return cls(**values)
        except ValueError as err:
            # Every message starts with the field name: make it the full config key.
            raise ValueError(f"{key_prefix}.{err}" if key_prefix else str(err)) from None

    def validate(self) -> None:
        """Range checks; messages name the parameter."""

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        for name in ("num_steps_per_env", "num_learning_epochs", "num_mini_batches"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        need(self.num_learning_iterations >= 0, "num_learning_iterations must be >= 0")
        need(self.sequence_length >= 0, f"sequence_length must be >= 0, got {self.sequence_length}")
        need(
            self.sequence_length <= self.num_steps_per_env,
            f"sequence_length ({self.sequence_length}) is longer than num_steps_per_env "
            f"({self.num_steps_per_env}): a rollout cannot hold a whole sequence; use at most "
            f"{self.num_steps_per_env} (0 = the whole rollout)",
        )
        need(0.0 < self.gamma <= 1.0, f"gamma must be in (0, 1], got {self.gamma}")
        need(0.0 <= self.lam <= 1.0, f"lam must be in [0, 1], got {self.lam}")
        for name in ("clip_param", "value_clip_param", "desired_kl", "max_grad_norm"):
            need(getattr(self, name) > 0.0, f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("value_loss_coef", "entropy_coef"):
            need(getattr(self, name) >= 0.0, f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("actor_learning_rate", "critic_learning_rate", "lr_min", "lr_max"):
            need(getattr(self, name) > 0.0, f"{name} must be > 0, got {getattr(self, name)}")
        need(self.lr_adapt_factor > 1.0, f"lr_adapt_factor must be > 1, got {self.lr_adapt_factor}")
        need(
            self.schedule in SCHEDULES,
            f"schedule must be one of {SCHEDULES}, got {self.schedule!r}",
        )
        need(self.lr_min <= self.lr_max, f"lr_min ({self.lr_min}) > lr_max ({self.lr_max})")
        if self.schedule == "adaptive":
            need(
                self.lr_min <= self.actor_learning_rate <= self.lr_max,
                f"actor_learning_rate {self.actor_learning_rate} is outside "
                f"[lr_min, lr_max] = [{self.lr_min}, {self.lr_max}]",
            )


def _check_type(full_key: str, value, annotation: str):
    """Accept exactly bool for bool, int (not bool) for int, int/float for float, str for str."""
    # Annotations are strings because of `from __future__ import annotations`.
    kind = {"int": int, "float": float, "bool": bool, "str": str}[str(annotation)]
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(
            f"{full_key} must be of type {kind.__name__}, got {type(value).__name__} ({value!r})"
        )
    return float(value) if kind is float else value


def check_batch_layout(
    num_envs: int, num_mini_batches: int, key_prefix: str = "algo.config"
) -> None:
    """Mini-batches are split over envs, so every mini-batch needs at least one env."""
    if num_envs < num_mini_batches:
        raise ValueError(
            f"num_envs ({num_envs}, per process) is smaller than "
            f"{key_prefix}.num_mini_batches ({num_mini_batches}): mini-batches are split over "
            f"envs, so each needs at least one env. Lower {key_prefix}.num_mini_batches to at "
            f"most {num_envs} or raise num_envs."
        )
