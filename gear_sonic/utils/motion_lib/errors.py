"""The one exception type raised for bad motion data."""

from __future__ import annotations


class MotionDataError(ValueError):
    """A motion file or clip that cannot be used as-is.

    The message always says where the problem is (file, clip key, field) and how to fix it,
    so a user can act on it without reading a traceback.
    """

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        clip_key: str | None = None,
        field: str | None = None,
        fix: str | None = None,
    ):
        where = []
        if source is not None:
            where.append(f"file '{source}'")
        if clip_key is not None:
            where.append(f"clip '{clip_key}'")
        if field is not None:
            where.append(f"key '{field}'")
        message = problem if not where else f"{', '.join(where)}: {problem}"
        if fix:
            message = f"{message}. Fix: {fix}"
        # Only the full message goes into args so the exception survives pickling
        # (joblib workers) as cls(message).
        super().__init__(message)
        self.source = source
        self.clip_key = clip_key
        self.field = field
