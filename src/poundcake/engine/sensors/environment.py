"""The interpreter and ``PYTHONPATH`` a sensor's process runs with.

As StackStorm builds them: the pack's virtualenv interpreter when it has one (else ours), and on
the path our StackStorm compatibility modules (``st2reactor.sensor.base``), the virtualenv's
site-packages (so the pack's own versions win), the pack's ``lib/``, the sensor's directory,
then the engine's own ``sys.path`` so the wrapper reaches our code and the database.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from poundcake.config import St2Config
from poundcake.engine.packs.virtualenvs import pack_python, virtualenv_path
from poundcake.engine.runners.python.runner import COMPAT_DIR


def virtualenv_site_packages(config: St2Config, pack: str) -> list[Path]:
    """The site-packages directories of ``pack``'s virtualenv (none if it has no virtualenv)."""
    root = virtualenv_path(config, pack)
    return sorted(path for path in root.glob("lib/python3*/site-packages") if path.is_dir())


def sensor_python_path(
    config: St2Config, *, pack: str, pack_path: Path | None, sensor_file: Path
) -> str:
    """The ``PYTHONPATH`` of a sensor process, in StackStorm's order."""
    entries: list[str] = [str(COMPAT_DIR)]
    entries += [str(path) for path in virtualenv_site_packages(config, pack)]
    if pack_path is not None and (pack_path / "lib").is_dir():
        entries.append(str(pack_path / "lib"))
    entries.append(str(sensor_file.parent))
    # sys.path[0] is the directory of the container's own script (the venv's bin/): not code.
    script_dir = str(Path(sys.argv[0]).resolve().parent) if sys.argv and sys.argv[0] else ""
    entries += [
        entry for entry in sys.path if entry and entry != script_dir and Path(entry).exists()
    ]
    unique = list(dict.fromkeys(entries))
    return os.pathsep.join(unique)


def sensor_interpreter(config: St2Config, pack: str) -> Path:
    """The interpreter of ``pack``'s sensors."""
    return pack_python(config, pack)
