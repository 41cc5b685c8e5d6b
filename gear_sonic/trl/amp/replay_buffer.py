"""A ring buffer of past policy feature windows, so the discriminator does not forget what
earlier policies did (and the policy cannot win by cycling back to an old style)."""

from __future__ import annotations

import torch


class PolicyReplayBuffer:
    def __init__(self, capacity: int, dim: int, device: torch.device | str = "cpu"):
        self.capacity = int(capacity)
        self.data = torch.zeros(self.capacity, int(dim), device=device)
        self.size = 0
        self.next = 0  # write position

    def __len__(self) -> int:
        return self.size

    def insert(self, samples: torch.Tensor) -> None:
        samples = samples.detach().reshape(-1, self.data.shape[1])[-self.capacity :]
        n = samples.shape[0]
        index = (self.next + torch.arange(n, device=self.data.device)) % self.capacity
        self.data[index] = samples.to(self.data)
        self.next = (self.next + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        index = torch.randint(self.size, (int(n),), device=self.data.device, generator=generator)
        return self.data[index]

    def mixed_batch(
        self, current: torch.Tensor, n: int, historical_share: float
    ) -> tuple[torch.Tensor, int]:
        """n policy samples: round(n * share) from the buffer (none while it is empty), the rest
        from `current` (this iteration's rollout). -> (samples, how many came from the buffer)."""
        n_old = round(n * historical_share) if self.size > 0 else 0
        new_index = torch.randint(current.shape[0], (n - n_old,), device=current.device)
        parts = [current[new_index]]
        if n_old:
            parts.append(self.sample(n_old).to(current))
        return torch.cat(parts, dim=0), n_old

    def state_dict(self) -> dict:
        return {
            "data": self.data[: self.size].clone(),
            "next": self.next,
            "size": self.size,
            "capacity": self.capacity,
        }

    def load_state_dict(self, state: dict) -> None:
        if (
            int(state["capacity"]) != self.capacity
            or state["data"].shape[1:] != self.data.shape[1:]
        ):
            raise ValueError(
                f"AMP replay buffer in the checkpoint holds {tuple(state['data'].shape)} with "
                f"capacity {state['capacity']}; the config asks for capacity {self.capacity} and "
                f"width {self.data.shape[1]}: resume with the checkpoint's amp settings"
            )
        self.size = int(state["size"])
        self.next = int(state["next"])
        self.data.zero_()
        self.data[: self.size] = state["data"].to(self.data)
