"""Teacher-student distillation by DAgger on the PPO trainer's machinery.

Each iteration the student drives the envs (with probability `teacher_forcing(iteration)` an env
executes the teacher's action instead); the frozen teacher labels every visited state, and the
student's action mean is regressed onto the labels (MSE or Huber) over epochs x mini-batches.
The critic keeps learning values of the student's rollouts (GAE returns, as in PPO), so a
student checkpoint can later be fine-tuned by PPO like any other.

Everything else is `TRLPPOTrainer`'s: rollout storage (the teacher's actions are stored where
PPO stores its sampled actions), episode statistics, env logs (the tracking reward terms),
metrics, callbacks (checkpoints, metrics.csv), resume and accelerate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from accelerate import Accelerator
from hydra.utils import instantiate
from torch import nn
from torch.nn import functional as F

from gear_sonic.checkpoint import load_checkpoint, require_keys
from gear_sonic.trl.trainer.distillation_config import DistillationConfig, check_teacher_state
from gear_sonic.trl.trainer.ppo_config import PPOConfig
from gear_sonic.trl.trainer.ppo_trainer import TRLPPOTrainer, _trainable


def build_teacher(settings: DistillationConfig, env) -> nn.Module:
    """The frozen teacher actor, built for this env and loaded from the teacher checkpoint."""
    state = load_checkpoint(settings.teacher_checkpoint)
    require_keys(state, ("actor",), settings.teacher_checkpoint)
    teacher = instantiate(
        settings.teacher["actor"],
        backbone={"obs_shapes": env.observation_shapes, "num_actions": env.num_actions},
        num_actions=env.num_actions,
    )
    term_names = {g: [name for name, _ in terms] for g, terms in env.term_layout.items()}
    check_teacher_state(
        state["actor"], teacher, env.observation_shapes, settings.teacher_checkpoint, term_names
    )
    teacher.load_state_dict(state["actor"])
    teacher.requires_grad_(False)
    return teacher.eval()


class DistillationTrainer(TRLPPOTrainer):
    def __init__(
        self,
        env,
        actor: nn.Module,
        critic: nn.Module,
        cfg: PPOConfig,
        accelerator: Accelerator,
        distillation: DistillationConfig | None = None,
        teacher: nn.Module | None = None,
        callbacks: Iterable = (),
        experiment_dir: str | Path | None = None,
        logger: logging.Logger | None = None,
    ):
        if distillation is None:
            raise ValueError(
                "DistillationTrainer needs a `distillation` section: use a student preset "
                "(+exp=manager/locomotion/go2_velocity_student +teacher_checkpoint=PATH)"
            )
        distillation.validate()
        if cfg.schedule != "fixed":
            raise ValueError(
                "algo.config.schedule=adaptive follows PPO's KL, which distillation does not "
                "measure: set algo.config.schedule=fixed"
            )
        super().__init__(env, actor, critic, cfg, accelerator, callbacks, experiment_dir, logger)
        self.settings = distillation
        # A teacher given in code (tests) skips the checkpoint.
        self.teacher = (teacher if teacher is not None else build_teacher(distillation, env)).to(
            self.device
        )
        self.teacher.requires_grad_(False).eval()
        self._generator = torch.Generator(device=self.device).manual_seed(
            12345 + accelerator.process_index
        )

    # ---------------------------------------------------------------- rollout
    @torch.no_grad()
    def collect_rollout(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """The student (or, per env and step, the teacher) acts; the teacher's action is stored
        as the label. -> last values, episode sums, env log (as TRLPPOTrainer)."""
        cfg, env, storage = self.cfg, self.env, self.storage
        storage.clear()
        forcing = self.settings.teacher_forcing(self.iteration)
        noise = self.settings.student_action_noise
        episode_sums = torch.zeros(3, device=self.device)
        log_sums: dict[str, torch.Tensor] = {}
        log_counts: dict[str, int] = {}
        zeros = torch.zeros(env.num_envs, device=self.device)
        obs = env.get_observations()
        for _ in range(cfg.num_steps_per_env):
            labels = self.teacher.act_inference(obs)
            actions = self.actor.act_inference(obs)
            if noise > 0.0:
                actions = actions + noise * torch.randn(
                    actions.shape, device=self.device, generator=self._generator
                )
            if forcing > 0.0:
                draw = torch.rand(env.num_envs, 1, device=self.device, generator=self._generator)
                actions = torch.where(draw < forcing, labels, actions)
            values = self.critic(obs).squeeze(-1)
            next_obs, rewards, dones, extras = env.step(actions)
            rewards, dones = rewards.reshape(-1), dones.reshape(-1).bool()
            storage.add(
                obs, labels, zeros, values, rewards, dones, extras.get("time_outs"), cfg.gamma
            )
            self._track_episodes(rewards, dones, episode_sums)
            self._accumulate_log(extras.get("log"), log_sums, log_counts)
            obs = next_obs
        last_values = self.critic(obs).squeeze(-1)
        env_log = {}
        if log_sums:
            means = torch.stack([log_sums[k] / log_counts[k] for k in log_sums]).tolist()
            env_log = dict(zip(log_sums, means))
        env_log["distill/teacher_forcing"] = forcing
        return last_values, episode_sums, env_log

    # ---------------------------------------------------------------- update
    def action_loss(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        if self.settings.loss == "huber":
            return F.huber_loss(student, teacher, delta=self.settings.huber_delta)
        return F.mse_loss(student, teacher)

    def update(self) -> dict[str, float]:
        cfg, acc = self.cfg, self.accelerator
        actor_params, critic_params = _trainable(self.actor), _trainable(self.critic)
        sums: dict[str, torch.Tensor] = {}
        skipped = 0
        num_batches = cfg.num_learning_epochs * cfg.num_mini_batches
        batches = self.storage.mini_batch_generator(cfg.num_mini_batches, cfg.num_learning_epochs)
        for batch in batches:
            # Through the prepared module, so DDP averages the gradients over processes.
            log_prob, _, mean, _, values = self.model(batch.obs, batch.actions)
            action_loss = self.action_loss(mean, batch.actions)
            value_loss = (values - batch.returns).square().mean()
            # The std takes no part in distillation; a zero-weighted term keeps it in the graph,
            # which DDP (without find_unused_parameters) requires of every parameter.
            loss = action_loss + cfg.value_loss_coef * value_loss + 0.0 * log_prob.mean()

            self.actor_optimizer.zero_grad(set_to_none=True)
            self.critic_optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            acc.unscale_gradients()
            actor_norm = nn.utils.clip_grad_norm_(actor_params, cfg.max_grad_norm)
            critic_norm = nn.utils.clip_grad_norm_(critic_params, cfg.max_grad_norm)
            finite = torch.isfinite(actor_norm) & torch.isfinite(critic_norm)
            if bool(finite):
                self.actor_optimizer.step()
                self.critic_optimizer.step()
            else:
                skipped += 1
            terms = {
                "distill/loss": action_loss,
                "distill/action_mse": (mean - batch.actions).square().mean(),
                "loss/value": value_loss,
                "policy/actor_grad_norm": actor_norm,
                "policy/critic_grad_norm": critic_norm,
            }
            for key, value in terms.items():
                value = value.detach().float()
                sums[key] = sums[key] + value if key in sums else value
        self.skipped_updates += skipped
        metrics = dict(zip(sums, (torch.stack(list(sums.values())) / num_batches).tolist()))
        metrics["loss/skipped_updates"] = float(skipped)
        return metrics

    # ---------------------------------------------------------------- logging, checkpoints
    def _print_line(self, m: Mapping[str, float], end: int, eta_s: float) -> None:
        get = lambda key: m.get(key, float("nan"))
        hours, rest = divmod(int(max(eta_s, 0.0)), 3600)
        track = get("Episode_Reward/track_lin_vel_xy_exp")
        self.console.print(
            f"[bold magenta]distill it {self.iteration}/{end}[/]"
            f" | {get('env_steps_per_s'):,.0f} steps/s | reward {get('mean_reward'):.3f}"
            f" | len {get('mean_episode_length'):.1f} | action mse {get('distill/action_mse'):.4f}"
            f" | track_lin_vel {track:.3f} | forcing {get('distill/teacher_forcing'):.2f}"
            f" | ETA {hours}:{rest // 60:02d}:{rest % 60:02d}",
            highlight=False,
        )

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["distillation"] = {"teacher_checkpoint": str(self.settings.teacher_checkpoint)}
        return state
