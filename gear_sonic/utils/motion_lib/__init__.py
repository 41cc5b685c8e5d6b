"""Motion library: read, validate, convert and query reference motions for tracking.

MotionLib / MotionState are imported lazily so file tools (readers, writers, FK, the inspect
CLI) start without paying for torch.
"""

from .clip import RawClip
from .conversion import ClipFrames, convert_clip, fk_max_error
from .errors import MotionDataError
from .kinematics import RobotKinematics
from .readers import list_motion_files, read_motion_file, validate_clip
from .writers import write_npz, write_sonic_pkl

_LAZY = {"MotionLib", "MotionState"}

__all__ = [
    "ClipFrames",
    "MotionDataError",
    "MotionLib",
    "MotionState",
    "RawClip",
    "RobotKinematics",
    "convert_clip",
    "fk_max_error",
    "list_motion_files",
    "read_motion_file",
    "validate_clip",
    "write_npz",
    "write_sonic_pkl",
]


def __getattr__(name: str):
    if name in _LAZY:
        from . import motion_lib

        return getattr(motion_lib, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
