"""Adversarial motion priors: settings, the policy replay buffer and the env-side feature recorder.

The discriminator lives in trl/modules/discriminator.py, the trainer in
trl/trainer/amp_trainer.py, the feature terms in envs/manager_env/mdp/amp_features.py.
"""

from gear_sonic.trl.amp.config import AMPSettings, amp_settings
from gear_sonic.trl.amp.replay_buffer import PolicyReplayBuffer

__all__ = ["AMPSettings", "PolicyReplayBuffer", "amp_settings"]
