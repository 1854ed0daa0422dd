"""``linux.file_rm``: delete a file, or a directory tree when asked to."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from st2common.runners.base_action import Action

PROTECTED = {Path("/"), Path("/etc"), Path("/usr"), Path("/bin"), Path("/var"), Path("/home")}


class FileRemove(Action):
    """Remove ``path``; a directory needs ``recursive``; a missing path fails unless ``force``."""

    def run(self, path: str, recursive: bool = False, force: bool = False) -> dict[str, Any]:
        target = Path(path)
        if not target.is_absolute():
            raise ValueError(f"path must be absolute, not {path!r}.")
        if target.resolve() in PROTECTED:
            raise ValueError(f"Refusing to remove {target.resolve()}.")
        if not target.exists() and not target.is_symlink():
            if force:
                return {"path": path, "removed": False}
            raise ValueError(f"{path} does not exist.")
        try:
            if target.is_dir() and not target.is_symlink():
                if not recursive:
                    raise ValueError(f"{path} is a directory; set recursive to remove it.")
                shutil.rmtree(target)
            else:
                target.unlink()
        except OSError as error:
            raise OSError(f"Cannot remove {path}: {error.strerror}") from None
        return {"path": path, "removed": True}
