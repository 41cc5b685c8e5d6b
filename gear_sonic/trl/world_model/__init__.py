"""A learned world model trained beside PPO on every rollout (config group `world_model`)."""

from gear_sonic.trl.world_model.learner import WorldModelLearner
from gear_sonic.trl.world_model.model import WorldModel

__all__ = ["WorldModel", "WorldModelLearner"]
