"""Run under torchrun with 2 CPU ranks: each rank normalises its own advantages through the
trainer's method; the script writes what it saw so the test can check the global statistics."""

import json
import sys
from types import SimpleNamespace

import torch
from accelerate import Accelerator

from gear_sonic.trl.trainer.ppo_trainer import TRLPPOTrainer

accelerator = Accelerator(cpu=True)
rank = accelerator.process_index
# Different data per rank: rank 0 around 0, rank 1 around 10, different sizes.
generator = torch.Generator().manual_seed(rank)
advantages = torch.randn(8 + 4 * rank, 3, generator=generator) + 10.0 * rank
fake = SimpleNamespace(
    storage=SimpleNamespace(advantages=advantages),
    num_processes=accelerator.num_processes,
    accelerator=accelerator,
)
TRLPPOTrainer._normalize_advantages(fake)
out = {
    "rank": rank,
    "world": accelerator.num_processes,
    "values": fake.storage.advantages.reshape(-1).tolist(),
}
with open(f"{sys.argv[1]}/rank{rank}.json", "w") as handle:
    json.dump(out, handle)
