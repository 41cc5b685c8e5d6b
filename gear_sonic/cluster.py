"""Running under a cluster launcher (hydra/launcher=submitit_slurm, config/hydra/launcher/).

A submitit job with several tasks (nodes x tasks_per_node) runs the training function once per
task; each task must know its place in the process group before accelerate forms it. submitit
knows the layout (SLURM's node list, task ids), so its helper exports MASTER_ADDR, MASTER_PORT,
RANK, WORLD_SIZE and LOCAL_RANK, the variables accelerate and torchrun read.
"""

from __future__ import annotations

import os


def export_submitit_distributed_env() -> bool:
    """In a multi-task submitit job, set the torch.distributed variables; -> whether it did.
    A no-op outside submitit, for one task, or when a launcher already set RANK."""
    if not os.environ.get("SUBMITIT_EXECUTOR") or "RANK" in os.environ:
        return False
    import submitit

    env = submitit.JobEnvironment()
    if env.num_tasks <= 1:
        return False
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return True
