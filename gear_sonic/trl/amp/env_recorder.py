"""Wraps the learner's env for AMP: records each step's feature window and optionally low-passes
the policy's actions. Everything else is the wrapped env's.

A step's window ends with the post-step frame. For an env that finished on that step the
post-step frame is already the reset state, so that step's window mixes two episodes: the
trainer gives it no style reward and does not show it to the discriminator.
"""

from __future__ import annotations

import torch

from gear_sonic.envs.manager_env.mdp.amp_features import (
    AMPFeatureSpec,
    env_frame_state,
    frame_features,
)


class AMPEnvRecorder:
    def __init__(self, env, spec: AMPFeatureSpec, num_steps: int, sensor: str, alpha: float = 1.0):
        self._env = env
        self.spec = spec
        self.sensor = sensor
        self.alpha = float(alpha)
        frame = self.current_frame()
        self.history = frame.unsqueeze(1).repeat(1, spec.window, 1)  # (N, k, F), oldest first
        self.features = torch.zeros(
            num_steps, env.num_envs, spec.window * frame.shape[-1], device=frame.device
        )
        self.count = 0  # steps recorded since the last `take`
        self._last_action: torch.Tensor | None = None

    def __getattr__(self, name):  # everything else is the wrapped env's
        return getattr(self._env, name)

    @property
    def feature_dim(self) -> int:
        return self.features.shape[-1]

    def current_frame(self) -> torch.Tensor:
        return frame_features(env_frame_state(self._env.env, self.spec, self.sensor), self.spec)

    def step(self, actions: torch.Tensor):
        if self.alpha < 1.0:
            if self._last_action is not None:
                actions = self.alpha * actions + (1.0 - self.alpha) * self._last_action
            self._last_action = actions.clone()
        obs, rewards, dones, extras = self._env.step(actions)
        frame = self.current_frame()
        self.history = torch.cat([self.history[:, 1:], frame.unsqueeze(1)], dim=1)
        if self.count < self.features.shape[0]:
            self.features[self.count] = self.history.flatten(1)
            self.count += 1
        done = dones.reshape(-1).bool()
        # A new episode starts its history from its first frame (as clip windows do).
        self.history[done] = frame[done].unsqueeze(1).expand(-1, self.spec.window, -1)
        if self._last_action is not None:
            self._last_action[done] = 0.0
        return obs, rewards, dones, extras

    def take(self) -> torch.Tensor:
        """(T, N, D) windows recorded since the last call."""
        out, self.count = self.features[: self.count], 0
        return out

    def reset(self):
        obs = self._env.reset()
        self.history[:] = self.current_frame().unsqueeze(1)
        self._last_action = None
        return obs

    def resample_motions(self, *args, **kwargs):
        self._env.resample_motions(*args, **kwargs)
        self.history[:] = self.current_frame().unsqueeze(1)
