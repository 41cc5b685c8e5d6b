"""Velocity commands for a locomotion policy: one constant command or a schedule file.

    --command 0.5,0,0.2          v_x m/s, v_y m/s (base frame), yaw rate rad/s, held throughout
    --commands schedule.csv      rows `time_s,vx,vy,wz` (header and # comments allowed): from
                                 each row's time on, its command holds until the next row's
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gear_sonic.deploy.errors import DeployInputError

FORMAT_HINT = "give three numbers vx,vy,wz (m/s, m/s, rad/s), e.g. 0.5,0,0"
FILE_HINT = "write rows `time_s,vx,vy,wz` with increasing times starting at 0"


class CommandSchedule:
    """Piecewise-constant (vx, vy, wz) over time."""

    def __init__(self, times: np.ndarray, commands: np.ndarray):
        self.times = np.asarray(times, np.float64)
        self.commands = np.asarray(commands, np.float32).reshape(-1, 3)

    @classmethod
    def constant(cls, text: str, source: str = "--command") -> CommandSchedule:
        return cls(np.zeros(1), _triple(text, source, FORMAT_HINT))

    @classmethod
    def from_file(cls, path: str | Path) -> CommandSchedule:
        path = Path(path)
        if not path.is_file():
            raise DeployInputError(str(path), "no such command schedule", FILE_HINT)
        times, rows = [], []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line or line[0].isalpha():
                continue  # blank, comment or header
            parts = line.split(",")
            if len(parts) != 4:
                raise DeployInputError(f"{path}:{number}", f"{len(parts)} columns", FILE_HINT)
            times.append(_number(parts[0], f"{path}:{number}", FILE_HINT))
            rows.append(_triple(",".join(parts[1:]), f"{path}:{number}", FILE_HINT))
        if not times or times[0] != 0.0 or np.any(np.diff(times) <= 0):
            raise DeployInputError(str(path), "no rows, a first time other than 0 or times that "
                                   "do not increase", FILE_HINT)
        return cls(np.array(times), np.array(rows))

    def at(self, time_s: float) -> np.ndarray:
        index = int(np.searchsorted(self.times, time_s + 1e-9, side="right")) - 1
        return self.commands[max(index, 0)]


def _triple(text: str, source: str, hint: str) -> np.ndarray:
    parts = text.split(",")
    if len(parts) != 3:
        raise DeployInputError(source, f"{text!r} is not three numbers", hint)
    return np.array([_number(p, source, hint) for p in parts], np.float32)


def _number(text: str, source: str, hint: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DeployInputError(source, f"{text.strip()!r} is not a number", hint) from None
    if not np.isfinite(value):
        raise DeployInputError(source, f"{text.strip()!r} is not finite", hint)
    return value
