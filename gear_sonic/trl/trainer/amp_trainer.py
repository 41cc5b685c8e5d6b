"""PPO with adversarial motion priors: the task reward plus a style reward from a discriminator
that tells expert clip windows from the policy's.

Order within an iteration (after_rollout, before GAE): the style reward of every recorded step
is read from the discriminator as it was while the rollout ran, added to the stored rewards,
and only then is the discriminator updated on that rollout (plus replayed older samples).
Features are normalised by the expert data's mean and std, computed once at start-up and kept
in the checkpoint (never updated from policy data).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn

from gear_sonic.checkpoint import CheckpointError, load_module_state
from gear_sonic.envs.manager_env.mdp.amp_features import expert_features, per_feature
from gear_sonic.trl.amp.config import AMPSettings, settings_from_mapping
from gear_sonic.trl.amp.env_recorder import AMPEnvRecorder
from gear_sonic.trl.amp.replay_buffer import PolicyReplayBuffer
from gear_sonic.trl.modules.discriminator import Discriminator, lsgan_r1_loss, style_reward
from gear_sonic.trl.trainer.ppo_config import PPOConfig
from gear_sonic.trl.trainer.ppo_trainer import TRLPPOTrainer


class AMPTrainer(TRLPPOTrainer):
    def __init__(
        self,
        env,
        actor: nn.Module,
        critic: nn.Module,
        cfg: PPOConfig,
        accelerator: Accelerator,
        amp: AMPSettings | Mapping | None = None,
        callbacks: Iterable = (),
        experiment_dir: str | Path | None = None,
        logger: logging.Logger | None = None,
        expert: torch.Tensor | None = None,
    ):
        if amp is None:
            raise ValueError(
                "AMPTrainer needs an `amp:` config section (compose +exp=manager/amp/...)"
            )
        self.amp = amp if isinstance(amp, AMPSettings) else settings_from_mapping(amp)
        spec = self.amp.features
        recorder = AMPEnvRecorder(
            env, spec, cfg.num_steps_per_env, self.amp.contact_sensor, self.amp.action_filter_alpha
        )
        super().__init__(
            recorder, actor, critic, cfg, accelerator, callbacks, experiment_dir, logger
        )
        self.amp_env = recorder
        joints = list(env.env.scene["robot"].joint_names)
        if expert is None:  # tests may hand in expert windows directly
            expert, keys = expert_features(
                self.amp.motion_file, self.amp.clips, spec, joints, 1.0 / env.step_dt
            )
            self.logger.info(
                "AMP expert: %d windows from %d clips (%s)", len(expert), len(keys), ", ".join(keys)
            )
        if expert.shape[-1] != recorder.feature_dim:
            raise ValueError(
                f"AMP expert windows have {expert.shape[-1]} features, the env's have "
                f"{recorder.feature_dim}: the clips' joints do not match the robot's"
            )
        self.expert = expert.to(self.device).float()
        self.norm_mean = self.expert.mean(0)
        floor = per_feature(self.amp.norm_std_min, spec, len(joints)).to(self.device)
        self.norm_std = torch.maximum(self.expert.std(0), floor)
        self.discriminator = Discriminator(
            recorder.feature_dim, self.amp.hidden_dims, self.amp.spectral_norm, self.amp.layer_norm
        ).to(self.device)
        self.disc_optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=self.amp.learning_rate
        )
        self.replay = PolicyReplayBuffer(
            self.amp.replay_capacity, recorder.feature_dim, self.device
        )

    # ---------------------------------------------------------------- style reward
    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        return ((features - self.norm_mean) / self.norm_std).clamp(-10.0, 10.0)

    @torch.no_grad()
    def style_rewards(self, features: torch.Tensor) -> torch.Tensor:
        """(..., D) raw feature windows -> (...) style reward in [0, 1], no noise, no update of
        the spectral-norm power iteration (eval mode)."""
        was_training = self.discriminator.training
        self.discriminator.eval()
        logits = self.discriminator(self.normalize(features.reshape(-1, features.shape[-1])))
        self.discriminator.train(was_training)
        return style_reward(logits, self.amp.reward_type).reshape(features.shape[:-1])

    def after_rollout(self) -> dict[str, float]:
        features = self.amp_env.take()  # (T, N, D)
        steps = features.shape[0]
        valid = ~self.storage.dones[:steps]  # a finished step's window spans two episodes
        style = self.style_rewards(features) * valid  # parameters of the rollout, before update
        self.storage.rewards[:steps] += self.amp.style_weight * self.env.step_dt * style
        policy = features[valid]
        metrics = self.update_discriminator(policy) if policy.shape[0] else {}
        self.replay.insert(policy)
        metrics["amp/style_reward"] = float(style.sum() / valid.sum().clamp_min(1))
        metrics["amp/replay_size"] = float(len(self.replay))
        return metrics

    def train(self, num_iterations: int | None = None) -> dict[str, float]:
        if self.iteration == 0 and self.amp.warmup_updates > 0:
            self.warm_up_discriminator()
        return super().train(num_iterations)

    def warm_up_discriminator(self) -> dict[str, float]:
        """Train the discriminator on one rollout of the initial policy (not used by PPO), so the
        first iterations' style rewards already tell the policy's motion from the clips'."""
        policy = self.policy_rollout_windows()
        metrics = self.update_discriminator(policy, self.amp.warmup_updates)
        self.replay.insert(policy)
        self.logger.info(
            "AMP discriminator warm-up: %d updates, accuracy %.2f",
            self.amp.warmup_updates,
            metrics["amp/disc_acc"],
        )
        return metrics

    def policy_rollout_windows(self) -> torch.Tensor:
        """Feature windows of one rollout of the current policy that PPO does not train on (the
        storage is cleared), without the steps that end an episode."""
        self.collect_rollout()
        features = self.amp_env.take()
        windows = features[~self.storage.dones[: features.shape[0]]]
        self.storage.clear()
        return windows

    # ---------------------------------------------------------------- discriminator update
    def update_discriminator(
        self, policy: torch.Tensor, steps: int | None = None
    ) -> dict[str, float]:
        amp, disc = self.amp, self.discriminator
        steps = amp.updates_per_iteration if steps is None else int(steps)
        disc.train()
        sums: dict[str, torch.Tensor] = {}
        for _ in range(steps):
            expert = self.expert[
                torch.randint(len(self.expert), (amp.batch_size,), device=self.device)
            ]
            fake, _ = self.replay.mixed_batch(policy, amp.batch_size, amp.historical_share)
            real = self.normalize(expert)
            fake = self.normalize(fake)
            real = real + amp.input_noise_std * torch.randn_like(real)
            fake = fake + amp.input_noise_std * torch.randn_like(fake)
            loss, t = lsgan_r1_loss(disc, real, fake, amp.r1_gamma)
            self.disc_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.num_processes > 1:  # one discriminator on every process
                for p in disc.parameters():
                    if p.grad is not None:
                        p.grad = self.accelerator.reduce(p.grad, "mean")
            self.disc_optimizer.step()
            d_real, d_fake = t["d_expert"].detach(), t["d_policy"].detach()
            step = {
                "amp/disc_loss": loss.detach(),
                "amp/r1": t["r1"].detach(),
                "amp/disc_acc": 0.5
                * ((d_real > 0.5).float().mean() + (d_fake < 0.5).float().mean()),
                "amp/disc_real_mean": d_real.mean(),
                "amp/disc_real_std": d_real.std(),
                "amp/disc_fake_mean": d_fake.mean(),
                "amp/disc_fake_std": d_fake.std(),
            }
            for key, value in step.items():
                sums[key] = sums[key] + value if key in sums else value
        values = torch.stack(list(sums.values())) / steps
        return dict(zip(sums, values.tolist()))

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        state = super().state_dict()
        state["amp"] = {
            "features": self.amp.features.describe(),
            "settings": dataclasses.asdict(self.amp),
            "discriminator": self.discriminator.state_dict(),
            "optimizer": self.disc_optimizer.state_dict(),
            "norm_mean": self.norm_mean.clone(),
            "norm_std": self.norm_std.clone(),
            "replay": self.replay.state_dict(),
        }
        return state

    def load_state_dict(self, state: Mapping) -> None:
        amp_state = state.get("amp")
        if amp_state is None:
            raise CheckpointError(
                "checkpoint has no `amp` state: it was not written by the AMP trainer; start a new "
                "run or use +checkpoint=PATH to load only the policy weights"
            )
        saved, wanted = amp_state["features"], self.amp.features.describe()
        if dict(saved) != wanted:
            raise CheckpointError(
                f"AMP features differ: the checkpoint has terms {saved['terms']} (window "
                f"{saved['window']}), the config amp.features has terms {wanted['terms']} (window "
                f"{wanted['window']}); resume with the checkpoint's amp.features"
            )
        super().load_state_dict(state)
        load_module_state(
            self.discriminator, amp_state["discriminator"], "checkpoint amp.discriminator"
        )
        self.disc_optimizer.load_state_dict(amp_state["optimizer"])
        self.norm_mean = amp_state["norm_mean"].to(self.device)
        self.norm_std = amp_state["norm_std"].to(self.device)
        self.replay.load_state_dict(amp_state["replay"])
