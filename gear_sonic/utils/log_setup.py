"""Console logging for the entry points: our library modules log progress at INFO."""

from __future__ import annotations

import logging


def configure_logging(level: int = logging.INFO) -> None:
    """Show `gear_sonic.*` log lines on stderr, once, without touching other libraries' loggers."""
    logger = logging.getLogger("gear_sonic")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
