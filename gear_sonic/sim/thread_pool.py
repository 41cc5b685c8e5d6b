"""Chunked parallel-for over worlds (MuJoCo's C calls release the GIL: threads run in parallel)."""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_num_threads(requested: int | None, num_worlds: int) -> int:
    cores = available_cores()
    threads = cores if requested in (None, 0) else int(requested)
    if threads < 1:
        raise ValueError(
            f"sim.num_threads must be >= 1 (or null for one per core), got {requested}"
        )
    if threads > cores:
        warnings.warn(
            f"sim.num_threads={threads} is more than the {cores} CPU cores this process may use; "
            "the extra threads only add switching overhead",
            stacklevel=3,
        )
    return max(1, min(threads, num_worlds))


class WorldPool:
    """[0, num_worlds) in small contiguous chunks that the threads claim one at a time.

    The calling thread works too. Chunks are claimed rather than assigned, so on a busy machine a
    thread that the OS deschedules holds up at most the one chunk it claimed, and tasks that never
    started are cancelled instead of waited for.
    """

    def __init__(self, num_worlds: int, num_threads: int, chunks_per_thread: int = 4):
        self.num_threads = num_threads
        parts = num_threads * chunks_per_thread if num_threads > 1 else 1
        bounds = [round(i * num_worlds / parts) for i in range(parts + 1)]
        self.chunks = [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]
        self._executor = ThreadPoolExecutor(num_threads - 1) if num_threads > 1 else None

    def run(self, work: Callable[[int, int, int], None]) -> None:
        """work(lo, hi, slot) for every chunk, slot in [0, num_threads) naming the thread (its
        private MjModel); returns when all chunks are done, re-raising the first error."""
        if self._executor is None:
            for lo, hi in self.chunks:
                work(lo, hi, 0)
            return
        pending = iter(self.chunks)  # shared: next() on a list iterator is atomic under the GIL

        def drain(slot: int) -> None:
            for lo, hi in pending:
                work(lo, hi, slot)

        helpers = [self._executor.submit(drain, slot) for slot in range(1, self.num_threads)]
        drain(0)
        for helper in helpers:
            if not helper.cancel():
                helper.result()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
