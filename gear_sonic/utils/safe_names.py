"""File names from names found in data files (clip keys, joint names).

A clip key such as `../../x` or `walk/run` must not pick the folder a file is written to:
`safe_filename` keeps letters, digits, `-`, `_` and `.` and replaces everything else (path
separators included) with `_`; a name made only of dots, or an empty one, gets a leading `_`.
`path_inside` joins a name to a folder and checks the result stays in it.
"""

from __future__ import annotations

from pathlib import Path

MAX_LENGTH = 80


def safe_filename(name: object, max_length: int = MAX_LENGTH) -> str:
    text = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in str(name))
    text = text[:max_length]
    if not text.strip("."):  # "", ".", "..": not a file name of its own
        text = "_" + text
    return text


def path_inside(folder: str | Path, name: object, suffix: str = "") -> Path:
    """`folder / (safe_filename(name) + suffix)`, guaranteed to be a direct child of folder."""
    folder = Path(folder)
    path = folder / f"{safe_filename(name)}{suffix}"
    if path.resolve().parent != folder.resolve():
        raise ValueError(f"file name {name!r} would leave {folder}")
    return path
