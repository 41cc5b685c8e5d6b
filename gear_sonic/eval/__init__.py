"""Checkpoint evaluation: tracking metrics (mm) over every dataset clip played once."""
