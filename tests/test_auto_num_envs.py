"""num_envs=auto: the count fits a given memory budget; a probe that cannot measure is an error."""

from __future__ import annotations

import pytest

from gear_sonic.utils.auto_num_envs import (
    AutoNumEnvsError,
    MemoryReading,
    choose_num_envs,
    measure_footprint,
)

MiB = 2**20


class FakeMemory:
    """A device with `total` bytes; each probe env holds fixed + n * per_env bytes."""

    def __init__(self, total, fixed, per_env):
        self.total, self.fixed, self.per_env, self.used = total, fixed, per_env, 100 * MiB

    def read(self):
        return MemoryReading(used=self.used, free=self.total - self.used)

    def build(self, n):
        self.used += self.fixed + n * self.per_env
        return object()


def test_auto_respects_the_memory_budget():
    memory = FakeMemory(total=8 * 2**30, fixed=300 * MiB, per_env=2 * MiB)
    per_env, fixed, free = measure_footprint(memory.build, (16, 64), memory.read)
    assert per_env == pytest.approx(2 * MiB) and fixed == pytest.approx(300 * MiB)
    count = choose_num_envs(per_env, fixed, free, margin=0.2, maximum=100_000, multiple_of=4)
    assert count % 4 == 0
    assert fixed + count * per_env <= 0.8 * free < fixed + (count + 4) * per_env
    assert choose_num_envs(per_env, fixed, free, 0.2, maximum=512) == 512  # the config cap


def test_probe_that_cannot_measure_is_an_error():
    memory = FakeMemory(total=8 * 2**30, fixed=0, per_env=0)  # no growth: nothing measured
    with pytest.raises(AutoNumEnvsError, match="could not measure a per-env footprint"):
        measure_footprint(memory.build, (16, 64), memory.read)

    def broken_read():
        raise RuntimeError("no NVML")

    with pytest.raises(AutoNumEnvsError, match="memory probe failed.*no NVML"):
        measure_footprint(memory.build, (16, 64), broken_read)


def test_too_little_memory_is_an_error():
    with pytest.raises(AutoNumEnvsError, match="not even 1 envs fit"):
        choose_num_envs(10 * MiB, 500 * MiB, 400 * MiB, margin=0.2, maximum=64)
