"""Reloading PoundCake's engine API key in running processes, without a restart (SIGHUP).

poundcake-api, poundcake-worker and poundcake-beat install :func:`install_reload_handler`: on
SIGHUP they read ``ST2_API_KEY_FILE`` again before their next engine request and log that they
did (never the key). ``poundcake reload`` sends SIGHUP to the running services through their pid
files (:func:`send_reload`). The worker's pool processes are not signalled (billiard ends a pool
process on SIGHUP); like every engine client they read the key file again as soon as it was
replaced (new inode, size or modification time), so they follow a rotation by themselves.

Rotation without downtime is therefore: create a new key, write it to the key file, reload, then
delete the old key. A request already on its way with the old key when that key is deleted is
answered 401; the client then reads the file again and repeats the request once, so it does not
fail. ``ST2_API_KEY`` (from the environment or ``.env``) is read once at start: a process whose
key comes from there logs that the reload cannot change it; use the key file to rotate.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from poundcake.config import Settings
from poundcake.ops.processes import ProcessManager
from poundcake.remediation.engine_api import api_key_file, request_key_reload

logger = logging.getLogger(__name__)

RELOAD_SIGNAL = signal.SIGHUP


@dataclass(frozen=True)
class ReloadSent:
    """A service ``poundcake reload`` looked for, and the pid it signalled (None: not running)."""

    name: str
    pid: int | None


def reload_engine_key(service: str, settings: Settings) -> None:
    """Have this process' engine clients read the key file again; log it (never the key)."""
    request_key_reload()
    if settings.st2_api_key is not None:
        logger.warning(
            "%s: reload requested, but ST2_API_KEY is set and is read only at start; "
            "keep the key in ST2_API_KEY_FILE to rotate it without a restart",
            service,
        )
        return
    path = api_key_file(settings)
    try:
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()
    except OSError:
        logger.warning("%s: reloaded, but the engine API key file %s is missing", service, path)
        return
    logger.info(
        "%s: reloaded; the engine API key is read again from %s (modified %s)",
        service,
        path,
        modified,
    )


def install_reload_handler(service: str, settings: Settings) -> None:
    """On SIGHUP, reload the engine API key (in a thread, not in the signal handler)."""

    def reload() -> None:
        try:
            reload_engine_key(service, settings)
        except Exception:  # a process boundary: a failed reload must not end the process
            logger.exception("%s: reload failed", service)

    def handle(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=reload, name="reload", daemon=True).start()

    signal.signal(RELOAD_SIGNAL, handle)


def send_reload(manager: ProcessManager, names: Sequence[str]) -> list[ReloadSent]:
    """Send SIGHUP to each running service among ``names``."""
    sent = []
    for name in names:
        pid = manager.pid(name)
        if pid is not None:
            os.kill(pid, RELOAD_SIGNAL)
        sent.append(ReloadSent(name, pid))
    return sent
