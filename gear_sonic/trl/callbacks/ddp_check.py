"""Check that every process holds the same model (several processes only; a no-op on one).

DDP keeps replicas identical by construction; this proves it on the running job. Every `interval`
iterations and at the end, each rank reduces its actor and critic tensors (weights and the critic's
running mean/std) to float64 fingerprints and all ranks compare them. With `compare_env_state`, the
env state (adaptive-sampling counts) is compared at the end too: it agrees only right after
sync_sampling has averaged it, i.e. when sync_sampling.interval divides the run's length. A
mismatch stops the run with the component named, instead of training diverged replicas silently.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def fingerprint(tree) -> torch.Tensor:
    """[sum, sum of squares, index-weighted sum] over every tensor in a nested dict, float64."""
    parts = []

    def walk(node):
        if isinstance(node, torch.Tensor):
            parts.append(node.detach().reshape(-1).double().cpu())
        elif isinstance(node, Mapping):
            for key in sorted(node):
                walk(node[key])
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)

    walk(tree)
    flat = torch.cat(parts) if parts else torch.zeros(1, dtype=torch.float64)
    weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64)
    return torch.stack([flat.sum(), flat.square().sum(), (flat * weights).sum()])


class DdpConsistencyCallback:
    def __init__(self, interval: int = 100, compare_env_state: bool = False):
        if interval < 1:
            raise ValueError("callbacks.ddp_check.interval must be >= 1")
        self.interval = interval
        self.compare_env_state = compare_env_state

    def on_iteration_end(self, trainer, iteration: int, metrics: dict) -> None:
        if trainer.accelerator.num_processes > 1 and iteration % self.interval == 0:
            self.check(trainer, with_env=False)
            metrics["ddp/replicas_identical"] = 1.0

    def on_train_end(self, trainer) -> None:
        if trainer.accelerator.num_processes > 1:
            self.check(trainer, with_env=self.compare_env_state)

    def check(self, trainer, with_env: bool) -> None:
        groups = {"actor": trainer.actor.state_dict(), "critic": trainer.critic.state_dict()}
        if with_env and hasattr(trainer.env, "state_dict"):
            groups["env state"] = trainer.env.state_dict()
        local = torch.stack([fingerprint(tree) for tree in groups.values()]).to(trainer.device)
        everyone = trainer.accelerator.gather(local.unsqueeze(0))  # (ranks, groups, 3)
        differs = [
            name
            for i, name in enumerate(groups)
            if not torch.equal(everyone[:, i], everyone[:1, i].expand_as(everyone[:, i]))
        ]
        if differs:
            raise RuntimeError(
                f"iteration {trainer.iteration}: the processes hold different {', '.join(differs)} "
                "(replicas diverged): report this with the launch command"
            )
