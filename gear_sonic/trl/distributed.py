"""Processes and devices for training: one `Accelerator`, each rank's env device, clear failures.

One code path serves every launch: a plain `python` run (one process), `torchrun
--nproc_per_node N`, `accelerate launch --config_file scripts/accelerate/cpu_2proc.yaml` (CPU,
gloo), `accelerate launch --multi_gpu --num_processes N` and multi-node launches. The launcher
sets RANK / WORLD_SIZE / LOCAL_RANK; accelerate reads them and forms the process group.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import timedelta

import torch
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs


class DistributedSetupError(RuntimeError):
    """The processes could not be set up (bad device, rendezvous that never completed)."""


def requested_device(device: str | None) -> str:
    """`auto` -> cuda when visible, else cpu; an explicit cuda index must exist."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda"):
        visible = torch.cuda.device_count()
        if visible == 0:
            raise DistributedSetupError(
                f"device={device}: no CUDA device is visible here; use device=cpu (or device=auto)"
            )
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if index >= visible:
            raise DistributedSetupError(
                f"device={device}: only {visible} CUDA device(s) are visible (cuda:0..cuda:{visible - 1})"
            )
    elif device != "cpu":
        raise DistributedSetupError(f"device={device}: use auto, cpu, cuda or cuda:<index>")
    return device


def make_accelerator(device: str | None, timeout_s: float) -> Accelerator:
    """The training Accelerator. Under a launcher each rank takes cuda:<local_rank> (or the CPU)."""
    wanted = requested_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if wanted.startswith("cuda") and world > 1 and local_rank >= torch.cuda.device_count():
        raise DistributedSetupError(
            f"local rank {local_rank} has no GPU: {torch.cuda.device_count()} visible on this node; "
            "launch at most one process per GPU (--num_processes / --nproc_per_node)"
        )
    handler = InitProcessGroupKwargs(timeout=timedelta(seconds=float(timeout_s)))
    try:
        accelerator = Accelerator(cpu=wanted == "cpu", kwargs_handlers=[handler])
    except Exception as err:  # store timeouts and refused connections come as several types
        if world == 1:
            raise
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        raise DistributedSetupError(
            f"rank {os.environ.get('RANK', '?')} of {world}: the process group did not form within "
            f"{timeout_s:g} s at {where} ({type(err).__name__}); check that every process/node was "
            "started with the same rendezvous address and port (dist_timeout_s sets the wait)"
        ) from None
    if world > 1 and accelerator.num_processes != world:
        raise DistributedSetupError(
            f"WORLD_SIZE={world} but accelerate formed {accelerator.num_processes} process(es)"
        )
    return accelerator


def env_device(accelerator: Accelerator) -> str:
    """The device string mjlab/warp accept: `cpu` (never `cpu:0`) or `cuda:<index>`."""
    device = accelerator.device
    if device.type == "cpu":
        return "cpu"
    return f"{device.type}:{device.index if device.index is not None else 0}"


def exit_cleanly_on_sigterm(rank: int) -> None:
    """Launchers stop every rank with SIGTERM when one fails: say so instead of a traceback."""

    def on_sigterm(signum, frame):
        print(
            f"rank {rank}: stopped by the launcher (SIGTERM), usually because another rank failed; "
            "its error is printed above. last.pt holds the last saved state.",
            file=sys.stderr,
            flush=True,
        )
        os._exit(143)

    signal.signal(signal.SIGTERM, on_sigterm)


# What gloo / NCCL say when the peer process is gone (killed, crashed, OOM).
_PEER_LOST_MARKERS = (
    "connection reset by peer",
    "connection closed by peer",
    "broken pipe",
    "socket closed",
    "nccl communicator was aborted",
)


def lost_peer_message(rank: int, err: BaseException) -> str | None:
    """-> a one-line explanation when `err` says another rank vanished mid-collective, else None.

    Which rank notices first is a race: the launcher's SIGTERM or the failed collective."""
    if not isinstance(err, RuntimeError):
        return None
    text = str(err)
    if not any(marker in text.lower() for marker in _PEER_LOST_MARKERS):
        return None
    first_line = text.strip().splitlines()[0][:200]
    return (
        f"rank {rank}: lost contact with another rank ({first_line}), usually because that rank "
        "failed; its error is printed above. last.pt holds the last saved state."
    )
