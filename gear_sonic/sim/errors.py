"""Errors of the native MuJoCo backend."""


class UnsupportedFeatureError(RuntimeError):
    """An mjlab feature that only MJWarp provides was asked of the native backend."""

    def __init__(self, feature: str):
        super().__init__(
            f"{feature} is not supported by the native MuJoCo backend; "
            "run with sim.backend=warp (manager_env.config.sim.backend=warp)"
        )


class UnsupportedFieldError(AttributeError):
    """A sim.data / sim.model field with no MuJoCo C counterpart (an AttributeError for hasattr)."""

    def __init__(self, owner: str, name: str):
        super().__init__(
            f"sim.{owner}.{name} is not available on the native MuJoCo backend "
            "(MJWarp-only field); "
            "run with sim.backend=warp (manager_env.config.sim.backend=warp)"
        )
