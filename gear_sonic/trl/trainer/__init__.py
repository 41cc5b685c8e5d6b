"""PPO trainers: rollout storage and GAE, the PPO config, the plain and aux-loss trainers."""

from gear_sonic.trl.trainer.ppo_config import PPOConfig, check_batch_layout
from gear_sonic.trl.trainer.ppo_trainer import PolicyAndValue, TRLPPOTrainer, adapt_learning_rate
from gear_sonic.trl.trainer.ppo_trainer_aux_loss import TRLAuxLossPPOTrainer
from gear_sonic.trl.trainer.rollout_storage import MiniBatch, RolloutStorage, compute_gae

__all__ = [
    "MiniBatch",
    "PPOConfig",
    "PolicyAndValue",
    "RolloutStorage",
    "TRLAuxLossPPOTrainer",
    "TRLPPOTrainer",
    "adapt_learning_rate",
    "check_batch_layout",
    "compute_gae",
]
