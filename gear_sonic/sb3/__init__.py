"""Stable-Baselines3 on our tasks: a VecEnv adapter and the `+exp=sb3/...` training entry."""
