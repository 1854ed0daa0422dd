"""``linux.file_touch``: create a file or update its modification time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from st2common.runners.base_action import Action


class FileTouch(Action):
    """Touch ``path``; fail when its directory is missing unless ``create_parents``."""

    def run(self, path: str, create_parents: bool = False) -> dict[str, Any]:
        target = Path(path)
        if not target.is_absolute():
            raise ValueError(f"path must be absolute, not {path!r}.")
        existed = target.exists()
        try:
            if create_parents:
                target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        except OSError as error:
            raise OSError(f"Cannot touch {path}: {error.strerror}") from None
        return {"path": path, "created": not existed, "mtime": target.stat().st_mtime}
