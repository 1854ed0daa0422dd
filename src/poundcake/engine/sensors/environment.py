"""The interpreter and ``PYTHONPATH`` a sensor's process runs with.

As StackStorm builds them (:func:`~poundcake.engine.packs.virtualenvs.pack_python_environment`):
the pack's virtualenv interpreter when it has one (else ours), and on the path our StackStorm
compatibility modules (``st2reactor.sensor.base``), the pack's ``lib/`` (only with ``[packs]
enable_common_libs``), the virtualenv's site-packages (so the pack's own versions win), the
engine's own import path so the wrapper reaches our code and the database, then the sensor's
directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from poundcake.config import St2Config
from poundcake.engine.packs.virtualenvs import (
    PackPythonEnvironment,
    common_library,
    pack_python_environment,
    virtualenvs_dir,
)


def sensor_environment(
    config: St2Config, *, pack: str, pack_path: Path | None
) -> PackPythonEnvironment:
    """The interpreter and import path of ``pack``'s sensors: as StackStorm's, the pack's
    ``lib/`` only with ``[packs] enable_common_libs``."""
    shared = common_library(config, pack_path) if pack_path is not None else None
    return pack_python_environment(virtualenvs_dir(config), pack, common_library=shared)


def sensor_python_path(environment: PackPythonEnvironment, *, sensor_file: Path) -> str:
    """The ``PYTHONPATH`` of a sensor process: the pack's, then the sensor's directory, which
    StackStorm's loader appends to ``sys.path`` (so a sensor's module cannot hide a library)."""
    entries = [*environment.python_path, sensor_file.parent]
    return os.pathsep.join(dict.fromkeys(str(entry) for entry in entries))
