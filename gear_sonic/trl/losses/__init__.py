"""Losses added to the PPO objective (token-space auxiliary losses)."""
