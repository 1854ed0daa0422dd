"""Where each pack's Python virtualenv lives and which interpreter runs the pack's code.

A pack's virtualenv is ``<virtualenvs_path>/<pack>`` (``[actionrunner] virtualenvs_path``,
default ``<data_dir>/virtualenvs``), as StackStorm keeps them in ``/opt/stackstorm/virtualenvs``.
Python actions and sensors of a pack run with its virtualenv's interpreter; a pack without one
runs with the engine's own interpreter.
"""

from __future__ import annotations

import sys
from pathlib import Path

from poundcake.config import St2Config


def virtualenvs_dir(config: St2Config) -> Path:
    """Return the directory that holds the packs' virtualenvs."""
    configured = config.actionrunner.virtualenvs_path.strip()
    return Path(configured).expanduser() if configured else config.data_dir / "virtualenvs"


def virtualenv_path(config: St2Config, pack: str) -> Path:
    """Return where ``pack``'s virtualenv is (or would be)."""
    return virtualenvs_dir(config) / pack


def pack_python(config: St2Config, pack: str) -> Path:
    """Return the interpreter that runs ``pack``'s Python code: its virtualenv's, else ours."""
    candidate = virtualenv_path(config, pack) / "bin" / "python"
    return candidate if candidate.is_file() else Path(sys.executable)
