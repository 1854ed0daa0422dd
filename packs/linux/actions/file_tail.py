"""``linux.file_tail``: the last lines of a text file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from st2common.runners.base_action import Action

BLOCK = 64 * 1024
MAX_LINES = 10_000


def last_lines(path: Path, count: int) -> list[str]:
    """Read ``path`` backwards in blocks until it has ``count`` lines."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        position = handle.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            step = min(BLOCK, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:] if count else []


class FileTail(Action):
    """Return the last ``lines`` lines of ``path``."""

    def run(self, path: str, lines: int = 10) -> dict[str, Any]:
        if not 0 <= lines <= MAX_LINES:
            raise ValueError(f"lines must be between 0 and {MAX_LINES}, not {lines}.")
        target = Path(path)
        if not target.is_file():
            raise ValueError(f"{path} is not a file.")
        try:
            found = last_lines(target, lines)
        except OSError as error:
            raise OSError(f"Cannot read {path}: {error.strerror}") from None
        return {"path": path, "lines": found, "text": "\n".join(found)}
