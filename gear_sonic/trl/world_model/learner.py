"""Trains the world model on every PPO rollout and reports `wm/*` metrics.

From the stored rollout (T, N): the transitions (o_t, a_t) -> o_{t+1}, r_t, done_t.
  obs_loss     MSE of the decoded next latent against the normalised o_{t+1}, over the steps
               whose next observation belongs to the same episode (not done, not the last step)
  latent_loss  MSE of the next latent against encode(o_{t+1}) (held fixed), same steps
  recon_loss   MSE of decode(encode(o_t)) against the normalised o_t
  reward_loss  MSE against the env reward (the time-out bootstrap the storage adds is removed)
  done_loss    BCE of the done logit against the termination (time-outs are not predictable
               from the state and count as not done)
  open_loop_error  k steps of the dynamics from encode(o_t) with the taken actions, decoded and
               compared to o_{t+k} (windows without an episode end); measured, not trained.
On CUDA the forward passes run under bf16 autocast. Under several processes the gradients are
averaged over processes before each step, so every copy stays the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from gear_sonic.trl.world_model.model import WorldModel


class WorldModelLearner:
    def __init__(
        self,
        obs_shapes: Mapping,
        num_actions: int,
        actor=None,
        accelerator=None,
        obs_groups: Sequence[str] = ("actor_obs",),
        latent_dim: int = 64,
        hidden_dims: Sequence[int] = (128, 128),
        activation: str = "elu",
        share_encoder: bool = False,
        learning_rate: float = 1e-3,
        num_epochs: int = 2,
        mini_batch_size: int = 1024,
        open_loop_steps: int = 5,
        gamma: float = 0.99,
        max_grad_norm: float = 1.0,
        device: str | torch.device | None = None,
    ):
        self.accelerator = accelerator
        self.device = torch.device(device or (accelerator.device if accelerator else "cpu"))
        encoder = None
        if share_encoder:
            backbone = getattr(actor, "backbone", None)
            encoder = getattr(backbone, "encoder", None)
            if encoder is None:
                raise ValueError(
                    "world_model.share_encoder=true needs an actor backbone with an encoder "
                    "(e.g. RecurrentBackbone with encoder_dims): set share_encoder=false or add one"
                )
            obs_groups = backbone.input_groups
            latent_dim = backbone.latent_dim
        missing = [g for g in obs_groups if g not in obs_shapes]
        if missing:
            raise KeyError(
                f"world_model.obs_groups: {missing} are not observation groups of the env; "
                f"available: {sorted(obs_shapes)}"
            )
        self.obs_groups = list(obs_groups)
        obs_dim = sum(_numel(obs_shapes[g]) for g in self.obs_groups)
        self.model = WorldModel(
            obs_dim, num_actions, latent_dim, hidden_dims, activation, encoder
        ).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(learning_rate))
        self.num_epochs = int(num_epochs)
        self.mini_batch_size = int(mini_batch_size)
        self.open_loop_steps = int(open_loop_steps)
        self.gamma = float(gamma)
        self.max_grad_norm = float(max_grad_norm)

    # ---------------------------------------------------------------- data
    def _flat_obs(self, obs: Mapping) -> torch.Tensor:
        return torch.cat([obs[g].flatten(2) for g in self.obs_groups], dim=-1)

    def _autocast(self):
        return torch.autocast(
            "cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"
        )

    # ---------------------------------------------------------------- training
    def losses(self, obs, next_obs, actions, rewards, terminated, has_next) -> dict:
        """Loss terms on flat rows (B, ...)."""
        model = self.model
        with self._autocast():
            z = model.encode(obs)
            z_next, reward, done_logit = model.step(z, actions)
            predicted = model.decode(z_next).float()
            reconstructed = model.decode(z).float()
            z_target = model.encode(next_obs).detach()
        target = model.normalizer(next_obs)
        weight = has_next.float()
        count = weight.sum().clamp_min(1.0)
        obs_loss = ((predicted - target).square().mean(-1) * weight).sum() / count
        latent_loss = ((z_next.float() - z_target.float()).square().mean(-1) * weight).sum() / count
        return {
            "obs_loss": obs_loss,
            # Keep the predicted latent on the encoder's manifold, so several dynamics steps
            # in a row (the open-loop rollout) still decode to observations.
            "latent_loss": latent_loss,
            "recon_loss": (reconstructed - model.normalizer(obs)).square().mean(),
            "reward_loss": F.mse_loss(reward.float(), rewards),
            "done_loss": F.binary_cross_entropy_with_logits(done_logit.float(), terminated),
        }

    def learn(self, storage) -> dict[str, float]:
        """Update on one rollout; -> {"wm/obs_loss": ..., ...} (means over the updates)."""
        obs = self._flat_obs(storage.obs)  # (T, N, D)
        num_steps = obs.shape[0]
        self.model.normalizer.update(obs, self._reduce_sum())
        # Transitions: next obs is the following stored step, valid within one episode.
        next_obs = torch.cat([obs[1:], obs[-1:]], dim=0)
        has_next = ~storage.dones.clone()
        has_next[-1] = False
        bootstrap = self.gamma * storage.values * storage.time_outs
        rewards = storage.rewards - bootstrap  # the env's own reward
        terminated = (storage.dones & ~storage.time_outs).float()
        rows = {
            "obs": obs.flatten(0, 1), "next_obs": next_obs.flatten(0, 1),
            "actions": storage.actions.flatten(0, 1), "rewards": rewards.flatten(),
            "terminated": terminated.flatten(), "has_next": has_next.flatten(),
        }
        total = rows["obs"].shape[0]
        sums: dict[str, torch.Tensor] = {}
        updates = 0
        params = [p for p in self.model.parameters() if p.requires_grad]
        for _ in range(self.num_epochs):
            order = torch.randperm(total, device=obs.device)
            for ids in order.split(self.mini_batch_size):
                terms = self.losses(**{k: v[ids] for k, v in rows.items()})
                loss = sum(terms.values())
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self._average_gradients(params)
                torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm)
                self.optimizer.step()
                for key, value in terms.items():
                    value = value.detach()
                    sums[key] = sums[key] + value if key in sums else value
                updates += 1
        metrics = {f"wm/{k}": v / max(updates, 1) for k, v in sums.items()}
        metrics["wm/open_loop_error"] = self.open_loop_error(
            obs, storage.actions, storage.dones, min(self.open_loop_steps, num_steps - 1)
        )
        keys = list(metrics)
        values = torch.stack([torch.as_tensor(metrics[k], device=obs.device) for k in keys])
        out = dict(zip(keys, values.float().tolist()))
        out["wm/open_loop_steps"] = float(self.open_loop_steps)
        return out

    @torch.no_grad()
    def open_loop_error(
        self, obs: torch.Tensor, actions: torch.Tensor, dones: torch.Tensor, k: int
    ) -> torch.Tensor:
        """Mean normalised-obs MSE after k open-loop dynamics steps (windows without an end);
    NaN when no window is free of an episode end."""
        if k < 1:
            return torch.tensor(float("nan"), device=obs.device)
        starts = obs.shape[0] - k
        # A window t..t+k-1 must not hold a done: its o_{t+k} would be a new episode.
        ended = dones[:starts].clone()
        for j in range(1, k):
            ended |= dones[j : starts + j]
        with self._autocast():
            z = self.model.encode(obs[:starts])
            for j in range(k):
                z, _, _ = self.model.step(z, actions[j : starts + j])
            predicted = self.model.decode(z).float()
        error = (predicted - self.model.normalizer(obs[k:])).square().mean(-1)
        valid = (~ended).float()
        # NaN, not 0, when every window holds an episode end: nothing was measured.
        return (error * valid).sum() / valid.sum()

    def _reduce_sum(self):
        acc = self.accelerator
        if acc is None or acc.num_processes == 1:
            return None
        return lambda t: acc.reduce(t, "sum")

    def _average_gradients(self, params) -> None:
        acc = self.accelerator
        if acc is None or acc.num_processes == 1:
            return
        for p in params:
            if p.grad is not None:
                p.grad.copy_(acc.reduce(p.grad, "mean"))

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Mapping) -> None:
        from gear_sonic.checkpoint import check_state_matches

        check_state_matches(self.model.state_dict(), state["model"], "checkpoint world_model")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


def _numel(shape) -> int:
    if isinstance(shape, int):
        return shape
    out = 1
    for d in shape:
        out *= int(d)
    return out
