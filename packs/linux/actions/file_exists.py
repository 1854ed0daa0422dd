"""``linux.file_exists``: whether a path exists, and what it is."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from st2common.runners.base_action import Action


def kind(mode: int) -> str:
    """Return the kind of file ``mode`` describes."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


class FileExists(Action):
    """Report whether ``path`` exists; with ``must_exist`` a missing path fails."""

    def run(self, path: str, must_exist: bool = False) -> tuple[bool, dict[str, Any]]:
        target = Path(path)
        try:
            info = target.lstat()
        except FileNotFoundError:
            result: dict[str, Any] = {"path": path, "exists": False}
            if must_exist:
                result["error"] = f"{path} does not exist."
                return False, result
            return True, result
        except OSError as error:
            raise OSError(f"Cannot inspect {path}: {error.strerror}") from None
        return True, {
            "path": path,
            "exists": True,
            "type": kind(info.st_mode),
            "size": info.st_size,
            "mtime": info.st_mtime,
            "mode": oct(stat.S_IMODE(info.st_mode)),
        }
