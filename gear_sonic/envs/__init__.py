"""Environments. `create_manager_env(cfg)` builds the wrapped mjlab env from a composed config."""


def create_manager_env(*args, **kwargs):
    # Imported lazily: mjlab and warp take seconds to import.
    from gear_sonic.envs.manager_env.builder import create_manager_env as _create

    return _create(*args, **kwargs)
