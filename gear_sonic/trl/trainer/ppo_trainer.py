"""PPO on one `accelerate.Accelerator`: rollout -> GAE -> epochs x mini-batches of clipped updates.

The actor and critic sit behind one module (`PolicyAndValue`) that is prepared once, so under
DDP a single backward synchronises both; each has its own Adam (the actor's LR follows the
KL-adaptive schedule, the critic's stays at `critic_learning_rate`). Rollouts use the unwrapped
modules. Everything that would force a host sync (episode returns, env logs, losses) is summed
on the device and read once per iteration.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from rich.console import Console
from torch import nn

from gear_sonic.checkpoint import check_state_matches
from gear_sonic.trl.modules.recurrent_modules import is_recurrent
from gear_sonic.trl.trainer.ppo_config import PPOConfig, check_batch_layout
from gear_sonic.trl.trainer.recurrent_storage import recurrent_storage_for
from gear_sonic.trl.trainer.rollout_storage import MiniBatch, RolloutStorage, iter_obs_tensors

CALLBACK_HOOKS = ("on_train_start", "on_iteration_end", "on_train_end")


def adapt_learning_rate(
    lr: float, kl: float, desired_kl: float, lr_min: float, lr_max: float, factor: float = 1.5
) -> float:
    """Shrink the step when the policy moved too far (KL > 2 x target), grow it when it barely
    moved (KL < target / 2); always within [lr_min, lr_max]. Only a finite, positive KL moves it:
    zero means nothing was measured (e.g. an empty batch), not that the policy stood still."""
    if not (math.isfinite(kl) and kl > 0.0):
        return lr
    if kl > 2.0 * desired_kl:
        lr = lr / factor
    elif kl < 0.5 * desired_kl:
        lr = lr * factor
    return min(max(lr, lr_min), lr_max)


class PolicyAndValue(nn.Module):
    """Actor + critic in one forward, so one prepared (DDP) module syncs both gradients."""

    def __init__(self, actor: nn.Module, critic: nn.Module):
        super().__init__()
        self.actor = actor
        self.critic = critic

    def forward(self, obs: Mapping, actions: torch.Tensor, sequence=None):
        """-> log_prob (B,), entropy (B,), mean (B, A), aux (TokenOutput or None), values (B,).
        Recurrent modules read padded sequences from `sequence` (a SequenceBatch) instead."""
        if sequence is not None:
            log_prob, entropy, mean, _, aux = self.actor.evaluate(obs, actions, sequence=sequence)
            return log_prob, entropy, mean, aux, self.critic(obs, sequence=sequence).squeeze(-1)
        log_prob, entropy, mean, _, aux = self.actor.evaluate(obs, actions)
        return log_prob, entropy, mean, aux, self.critic(obs).squeeze(-1)


class TRLPPOTrainer:
    def __init__(
        self,
        env,
        actor: nn.Module,
        critic: nn.Module,
        cfg: PPOConfig,
        accelerator: Accelerator,
        callbacks: Iterable = (),
        experiment_dir: str | Path | None = None,
        logger: logging.Logger | None = None,
        world_model=None,
    ):
        check_batch_layout(env.num_envs, cfg.num_mini_batches)
        self.env = env
        self.cfg = cfg
        self.accelerator = accelerator
        self.callbacks = list(callbacks)
        self.experiment_dir = Path(experiment_dir) if experiment_dir is not None else None
        self.logger = logger or logging.getLogger(__name__)
        self.console = Console()
        self.device = accelerator.device

        model = PolicyAndValue(actor, critic).to(self.device)
        self.actor_lr = float(cfg.actor_learning_rate)
        actor_opt = torch.optim.Adam(_trainable(actor), lr=self.actor_lr)
        critic_opt = torch.optim.Adam(_trainable(critic), lr=cfg.critic_learning_rate)
        self.model, self.actor_optimizer, self.critic_optimizer = accelerator.prepare(
            model, actor_opt, critic_opt
        )
        self.policy: PolicyAndValue = accelerator.unwrap_model(self.model)
        self.recurrent = is_recurrent(actor)
        if self.recurrent:  # hidden states stored with the rollout, sequence mini-batches
            self.storage = recurrent_storage_for(actor, critic, cfg, env, self.device)
        else:
            self.storage = RolloutStorage(
                cfg.num_steps_per_env, env.num_envs, env.observation_shapes, env.num_actions,
                self.device,
            )
        # An auxiliary learner trained on every rollout (gear_sonic/trl/world_model), or None.
        self.world_model = None
        if world_model is not None:
            self.world_model = world_model(
                obs_shapes=env.observation_shapes, num_actions=env.num_actions, actor=actor,
                accelerator=accelerator,
            )
        self.iteration = 0  # completed iterations
        self.total_env_steps = 0  # over all processes
        self.skipped_updates = 0  # optimizer steps skipped for non-finite gradients
        self.skipped_rollouts = 0  # iterations whose update was skipped for non-finite data
        self.stop_requested = False
        self._ep_return = torch.zeros(env.num_envs, device=self.device)
        self._ep_length = torch.zeros(env.num_envs, device=self.device)
        # Carried over when no episode ends within an iteration.
        self._mean_return = float("nan")
        self._mean_length = float("nan")

    # ---------------------------------------------------------------- helpers
    @property
    def actor(self) -> nn.Module:
        return self.policy.actor

    @property
    def critic(self) -> nn.Module:
        return self.policy.critic

    @property
    def num_processes(self) -> int:
        return self.accelerator.num_processes

    def restart_episode_stats(self) -> None:
        """Forget the running episodes (after the env restarted every env, e.g. a clip re-draw),
        so their partial returns do not leak into the next episodes' statistics."""
        self._ep_return.zero_()
        self._ep_length.zero_()
        if self.recurrent:  # every env starts a new episode: from a zero state
            self.actor.backbone.reset()
            self.critic.reset()

    def _call(self, hook: str, *args) -> None:
        for callback in self.callbacks:
            fn = getattr(callback, hook, None)
            if fn is not None:
                fn(self, *args)

    def _reduce_sum(self):
        if self.num_processes == 1:
            return None
        return lambda t: self.accelerator.reduce(t, "sum")

    def _set_actor_lr(self, lr: float) -> None:
        for group in self.actor_optimizer.param_groups:
            group["lr"] = lr

    def _clamp_std(self) -> None:
        # Outside [std_min, std_max] the clamp in Actor.action_std has no gradient, so a
        # parameter that drifted out would never come back.
        actor = self.actor
        if isinstance(getattr(actor, "std", None), torch.Tensor):
            with torch.no_grad():
                actor.std.clamp_(actor.std_min, actor.std_max)

    # ---------------------------------------------------------------- rollout
    @torch.no_grad()
    def collect_rollout(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Fill the storage. -> last values (N,), episode sums [count, return, length], env log."""
        cfg, env, storage = self.cfg, self.env, self.storage
        storage.clear()
        episode_sums = torch.zeros(3, device=self.device)
        log_sums: dict[str, torch.Tensor] = {}
        log_counts: dict[str, int] = {}
        obs = env.get_observations()
        for _ in range(cfg.num_steps_per_env):
            if self.recurrent:
                self._store_recurrent_states()
            actions, log_probs = self.actor.act(obs)
            values = self.critic(obs).squeeze(-1)
            next_obs, rewards, dones, extras = env.step(actions)
            rewards, dones = rewards.reshape(-1), dones.reshape(-1).bool()
            if self.recurrent:  # a new episode starts from a zero state
                self.actor.backbone.reset(dones)
                self.critic.reset(dones)
            storage.add(
                obs, actions, log_probs, values, rewards, dones, extras.get("time_outs"), cfg.gamma
            )
            self._track_episodes(rewards, dones, episode_sums)
            self._accumulate_log(extras.get("log"), log_sums, log_counts)
            obs = next_obs
        if self.recurrent:  # a look ahead, not a step: the state must not advance
            last_values = self.critic(obs, advance=False).squeeze(-1)
        else:
            last_values = self.critic(obs).squeeze(-1)
        env_log = {}
        if log_sums:
            means = torch.stack([log_sums[k] / log_counts[k] for k in log_sums]).tolist()
            env_log = dict(zip(log_sums, means))
        return last_values, episode_sums, env_log

    def _store_recurrent_states(self) -> None:
        num_envs = self.env.num_envs
        self.storage.add_states(
            self.actor.backbone.current_state(num_envs, self.device),
            self.critic.current_state(num_envs, self.device),
        )

    def _track_episodes(self, rewards: torch.Tensor, dones: torch.Tensor, sums: torch.Tensor):
        # Non-finite rewards are reported (and the update skipped) elsewhere; keep stats readable.
        self._ep_return += torch.nan_to_num(rewards.float(), nan=0.0, posinf=0.0, neginf=0.0)
        self._ep_length += 1
        finished = torch.stack([dones.float(), self._ep_return, self._ep_length])
        sums += torch.where(dones, finished, torch.zeros_like(finished)).sum(-1)
        self._ep_return.masked_fill_(dones, 0.0)
        self._ep_length.masked_fill_(dones, 0.0)

    def _accumulate_log(self, log: Mapping | None, sums: dict, counts: dict) -> None:
        """Sum the env's episode statistics (filled on reset steps) without leaving the device."""
        for key, value in (log or {}).items():
            scalar = isinstance(value, torch.Tensor) and value.numel() == 1
            if not (scalar or isinstance(value, (int, float))):
                continue
            value = torch.as_tensor(value, dtype=torch.float32, device=self.device).detach()
            sums[key] = sums[key] + value.reshape(()) if key in sums else value.reshape(())
            counts[key] = counts.get(key, 0) + 1

    def _non_finite_rollout(self) -> list[str]:
        """Names of the rollout tensors holding NaN/inf, agreed over processes."""
        named = [("rewards", self.storage.rewards), *iter_obs_tensors(self.storage.obs)]
        bad = torch.stack([~torch.isfinite(t).all() for _, t in named]).float()
        if self.num_processes > 1:
            bad = self.accelerator.reduce(bad, "sum")  # skip everywhere or nowhere (DDP)
        return [name for (name, _), flag in zip(named, bad.tolist()) if flag > 0]

    def _normalize_advantages(self) -> None:
        """Zero mean, unit std over the whole batch of every process."""
        adv = self.storage.advantages.double()
        moments = torch.stack([adv.sum(), adv.square().sum(), adv.new_tensor(adv.numel())])
        if self.num_processes > 1:
            moments = self.accelerator.reduce(moments, "sum")
        mean = moments[0] / moments[2]
        std = (moments[1] / moments[2] - mean.square()).clamp_min(0.0).sqrt()
        self.storage.advantages = ((adv - mean) / (std + 1e-8)).float()

    def after_rollout(self) -> dict[str, float]:
        """Hook between the rollout and GAE (e.g. rewards added from the stored rollout, as AMP's
        style reward): may change `self.storage.rewards`; -> metrics of this iteration."""
        return {}

    # ---------------------------------------------------------------- update
    def extra_losses(
        self, batch: MiniBatch, aux, action_mean: torch.Tensor
    ) -> tuple[torch.Tensor | float, dict]:
        """Hook for losses added to PPO, given the update's own forward pass (the backbone's aux
        output and the Gaussian mean): -> (weighted total, {name: unweighted value})."""
        return 0.0, {}

    def update(self) -> dict[str, float]:
        cfg, acc = self.cfg, self.accelerator
        actor_params, critic_params = _trainable(self.actor), _trainable(self.critic)
        sums: dict[str, torch.Tensor] = {}
        codes = []
        skipped = 0
        num_batches = cfg.num_learning_epochs * cfg.num_mini_batches
        batches = self.storage.mini_batch_generator(cfg.num_mini_batches, cfg.num_learning_epochs)
        for i, batch in enumerate(batches):
            if self.recurrent:
                log_prob, entropy, action_mean, aux, values = self.model(
                    batch.obs, batch.actions, sequence=batch.sequence
                )
            else:
                log_prob, entropy, action_mean, aux, values = self.model(batch.obs, batch.actions)
            log_ratio = log_prob - batch.old_log_probs
            ratio = log_ratio.exp()
            adv = batch.advantages
            clipped_ratio = ratio.clamp(1.0 - cfg.clip_param, 1.0 + cfg.clip_param)
            surrogate = -torch.min(ratio * adv, clipped_ratio * adv).mean()
            value_loss = (values - batch.returns).square()
            if cfg.use_clipped_value_loss:
                vc = cfg.value_clip_param
                clipped = batch.old_values + (values - batch.old_values).clamp(-vc, vc)
                value_loss = torch.max(value_loss, (clipped - batch.returns).square())
            value_loss = value_loss.mean()
            entropy = entropy.mean()
            extra, extra_terms = self.extra_losses(batch, aux, action_mean)
            loss = surrogate + cfg.value_loss_coef * value_loss - cfg.entropy_coef * entropy
            loss = loss + extra

            self.actor_optimizer.zero_grad(set_to_none=True)
            self.critic_optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            acc.unscale_gradients()  # no-op unless fp16; clipping needs true gradients
            actor_norm = nn.utils.clip_grad_norm_(actor_params, cfg.max_grad_norm)
            critic_norm = nn.utils.clip_grad_norm_(critic_params, cfg.max_grad_norm)
            with torch.no_grad():
                # k3 estimator of KL(old || new): non-negative, from the stored log-probs.
                kl = ((ratio - 1.0) - log_ratio).mean()
                if self.num_processes > 1:
                    kl = acc.reduce(kl, "mean")  # every process picks the same LR
                finite = torch.isfinite(actor_norm) & torch.isfinite(critic_norm)
                kl_value, grads_ok = torch.stack([kl, finite.float()]).tolist()
            if cfg.schedule == "adaptive":
                self.actor_lr = adapt_learning_rate(
                    self.actor_lr, kl_value, cfg.desired_kl, cfg.lr_min, cfg.lr_max,
                    cfg.lr_adapt_factor,
                )
                self._set_actor_lr(self.actor_lr)
            if grads_ok:
                self.actor_optimizer.step()
                self.critic_optimizer.step()
                self._clamp_std()
            else:
                skipped += 1  # the NaN gradients are dropped by the next zero_grad

            terms = {
                "loss/surrogate": surrogate, "loss/value": value_loss, "loss/entropy": entropy,
                "policy/kl": kl, "policy/actor_grad_norm": actor_norm,
                "policy/critic_grad_norm": critic_norm,
                **{f"loss/{name}": value for name, value in extra_terms.items()},
            }
            for key, value in terms.items():
                value = torch.as_tensor(value, device=self.device).detach().float()
                sums[key] = sums[key] + value if key in sums else value
            codes_now = getattr(aux, "codes", None)
            if codes_now is not None and i >= num_batches - cfg.num_mini_batches:
                codes.append(codes_now.detach().to(torch.int16))  # last epoch: every env once

        self.skipped_updates += skipped
        metrics = dict(zip(sums, (torch.stack(list(sums.values())) / num_batches).tolist()))
        metrics["loss/skipped_updates"] = float(skipped)
        usage_fn = getattr(getattr(self.actor, "backbone", None), "usage_metrics", None)
        if codes and usage_fn is not None:
            metrics.update(usage_fn(torch.cat(codes)))
        return metrics

    # ---------------------------------------------------------------- input normalisers
    def _input_normalizer_updaters(self) -> list:
        """update_normalizer of the critic (if cfg.update_critic_normalizer) and of an actor
        backbone that normalises its input (actor_critic.actor.backbone.normalize_input)."""
        updaters = []
        if self.cfg.update_critic_normalizer and getattr(self.critic, "normalizer", None) is not None:
            updaters.append(self.critic)
        if getattr(self.actor.backbone, "normalizer", None) is not None:
            updaters.append(self.actor.backbone)
        return updaters

    def _fresh_input_normalizers(self) -> bool:
        return any(module.normalizer.count == 0 for module in self._input_normalizer_updaters())

    def _update_input_normalizers(self, obs) -> None:
        for module in self._input_normalizer_updaters():
            module.update_normalizer(obs, self._reduce_sum())

    # ---------------------------------------------------------------- iterations
    def run_iteration(self) -> dict[str, float]:
        cfg = self.cfg
        start = time.perf_counter()
        self.model.train()
        last_values, episode_sums, env_log = self.collect_rollout()
        collect_s = time.perf_counter() - start
        metrics: dict[str, float] = self.after_rollout()
        bad = self._non_finite_rollout()
        if bad:
            self.skipped_rollouts += 1
            self.logger.warning(
                "iteration %d: non-finite values in the rollout (%s); skipping this update",
                self.iteration + 1, ", ".join(bad),
            )
        else:
            self.storage.compute_returns(last_values, cfg.gamma, cfg.lam)
            if cfg.normalize_advantages:
                self._normalize_advantages()
            metrics.update(self.update())
            # After the update, so one iteration's values and log-probs share one normalisation.
            self._update_input_normalizers(self.storage.obs)
            if self.world_model is not None:
                metrics.update(self.world_model.learn(self.storage))
        learn_s = time.perf_counter() - start - collect_s

        self.iteration += 1
        steps = cfg.num_steps_per_env * self.env.num_envs * self.num_processes
        self.total_env_steps += steps
        count, return_sum, length_sum = episode_sums.tolist()
        if count > 0:
            self._mean_return, self._mean_length = return_sum / count, length_sum / count
        metrics.update(
            {
                "iteration": float(self.iteration),
                "total_env_steps": float(self.total_env_steps),
                "env_steps_per_s": steps / max(collect_s + learn_s, 1e-9),
                "mean_reward": self._mean_return,
                "mean_episode_length": self._mean_length,
                "episodes_completed": count,
                "policy/actor_lr": self.actor_lr,
                "policy/critic_lr": float(self.critic_optimizer.param_groups[0]["lr"]),
                "policy/mean_std": float(self.actor.action_std.detach().mean()),
                "rollout/skipped_update": float(bool(bad)),
                "time/collection_s": collect_s,
                "time/learn_s": learn_s,
                **env_log,
            }
        )
        return self._gather_metrics(metrics)

    def _gather_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Mean over processes (keys a process lacks, or NaN there, are left out of its mean)."""
        if self.num_processes == 1:
            return metrics
        everyone = gather_object([metrics])
        out = {}
        for key in dict.fromkeys(k for m in everyone for k in m):
            vals = [m[key] for m in everyone if key in m and math.isfinite(m[key])]
            out[key] = sum(vals) / len(vals) if vals else float("nan")
        return out

    def train(self, num_iterations: int | None = None) -> dict[str, float]:
        """Run `num_iterations` more iterations (default cfg.num_learning_iterations), counting
        on from `self.iteration`. Returns the last iteration's metrics."""
        num = self.cfg.num_learning_iterations if num_iterations is None else int(num_iterations)
        end = self.iteration + num
        if self._fresh_input_normalizers():
            # Fresh start: seed the input statistics with the first observations.
            with torch.no_grad():
                self._update_input_normalizers(self.env.get_observations())
        if self.cfg.random_initial_episode_length and self.iteration == 0:
            self.randomize_episode_lengths()
        self._call("on_train_start")
        metrics: dict[str, float] = {}
        started, done = time.perf_counter(), 0
        while self.iteration < end and not self.stop_requested:
            metrics = self.run_iteration()
            done += 1
            if self.accelerator.is_main_process:
                eta = (time.perf_counter() - started) / done * (end - self.iteration)
                self._print_line(metrics, end, eta)
            self._call("on_iteration_end", self.iteration, metrics)
        self._call("on_train_end")
        return metrics

    def randomize_episode_lengths(self) -> None:
        """Each env's elapsed steps uniform in [0, max_episode_length): the first time-outs
        come spread over one episode instead of all at once."""
        buf = getattr(self.env, "episode_length_buf", None)
        horizon = int(getattr(self.env, "max_episode_length", 0) or 0)
        if buf is None or horizon < 1:
            raise ValueError(
                "algo.config.random_initial_episode_length=true needs an env with "
                "episode_length_buf and max_episode_length (a manager env); set it to false"
            )
        buf.copy_(torch.randint_like(buf, high=horizon))

    def _print_line(self, m: Mapping[str, float], end: int, eta_s: float) -> None:
        get = lambda key: m.get(key, float("nan"))
        hours, rest = divmod(int(max(eta_s, 0.0)), 3600)
        eta = f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
        skipped = " [red]update skipped[/]" if get("rollout/skipped_update") > 0 else ""
        self.console.print(
            f"[bold cyan]it {self.iteration}/{end}[/] | {get('env_steps_per_s'):,.0f} steps/s"
            f" | reward {get('mean_reward'):.3f} | len {get('mean_episode_length'):.1f}"
            f" | surr {get('loss/surrogate'):+.4f} | value {get('loss/value'):.4f}"
            f" | ent {get('loss/entropy'):.3f} | kl {get('policy/kl'):.4f}"
            f" | lr {self.actor_lr:.2e} | ETA {eta}{skipped}",
            highlight=False,
        )

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "actor_lr": self.actor_lr,
            "iteration": self.iteration,
            "total_env_steps": self.total_env_steps,
            "env": self.env.state_dict() if hasattr(self.env, "state_dict") else {},
            "config": dataclasses.asdict(self.cfg),
            **({"world_model": self.world_model.state_dict()} if self.world_model is not None else {}),
        }

    def load_state_dict(self, state: Mapping) -> None:
        modules = (("actor", self.actor), ("critic", self.critic))
        for name, module in modules:  # check everything before touching anything
            check_state_matches(module.state_dict(), state[name], f"checkpoint {name}")
        for name, module in modules:
            module.load_state_dict(state[name])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.actor_lr = float(state["actor_lr"])
        self._set_actor_lr(self.actor_lr)
        self.iteration = int(state["iteration"])
        self.total_env_steps = int(state["total_env_steps"])
        if state.get("env") and hasattr(self.env, "load_state_dict"):
            self.env.load_state_dict(state["env"])
        if self.world_model is not None:
            if "world_model" not in state:
                raise KeyError(
                    "checkpoint has no world_model state but this run has a world_model section: "
                    "resume without it or start a new run"
                )
            self.world_model.load_state_dict(state["world_model"])


def _trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]
