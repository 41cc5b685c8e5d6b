"""gymnasium interop: our tasks as gymnasium envs (registered on import), and gymnasium envs as
the batched torch env our trainer steps (`gear_sonic.gym_interop.torch_env`)."""

from gear_sonic.gym_interop.registration import (
    check_env_id,
    register_tasks,
    registered_ids,
    task_id,
)

register_tasks()

__all__ = ["check_env_id", "registered_ids", "task_id"]
