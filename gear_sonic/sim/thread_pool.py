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
    """[0, num_worlds) in one contiguous chunk per thread; the calling thread runs the last one."""

    def __init__(self, num_worlds: int, num_threads: int):
        self.num_threads = num_threads
        bounds = [round(i * num_worlds / num_threads) for i in range(num_threads + 1)]
        self.chunks = [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]
        self._executor = ThreadPoolExecutor(len(self.chunks) - 1) if len(self.chunks) > 1 else None

    def run(self, work: Callable[[int, int], None]) -> None:
        """work(lo, hi) for every chunk; returns when all are done, re-raising the first error."""
        if self._executor is None:
            work(*self.chunks[0])
            return
        futures = [self._executor.submit(work, lo, hi) for lo, hi in self.chunks[:-1]]
        work(*self.chunks[-1])
        for future in futures:
            future.result()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
