"""gear_sonic: SONIC-style universal humanoid motion tracking on mjlab."""

import os

# mjlab logs one line per cached warp kernel module at start-up, which drowns the useful output;
# MJLAB_WARP_QUIET=0 brings it back (it must be set before mjlab is imported).
os.environ.setdefault("MJLAB_WARP_QUIET", "1")


def _local_base(base) -> str:
    """`${local_base:${base_dir}}`: Hydra's own sweep files (multirun.yaml, optuna results,
    submitit logs) stay on local disk when base_dir is a storage URL (s3://...): under logs_rl."""
    text = str(base)
    if text.startswith("file://"):
        return text[len("file://"):]
    return "logs_rl" if "://" in text else text


def _register_config_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("local_base"):
        OmegaConf.register_new_resolver("local_base", _local_base)


_register_config_resolvers()
