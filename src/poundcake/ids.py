"""24-hex, time-ordered identifiers in MongoDB ObjectId layout, as StackStorm's clients expect.

Layout: 4 bytes of epoch seconds, 5 random bytes fixed per process, a 3-byte counter.
IDs made in a later second sort after those of an earlier one; within a second and a process
the counter keeps them in order.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from datetime import UTC, datetime

_ID_PATTERN = re.compile(r"^[0-9a-f]{24}$")
_process_random = os.urandom(5)
_process_pid = os.getpid()
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_lock = threading.Lock()


def _refresh_after_fork() -> None:
    global _process_random, _process_pid
    _process_random = os.urandom(5)
    _process_pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_after_fork)


def new_id(at: float | None = None) -> str:
    """Return a new 24-hex identifier stamped with ``at`` (epoch seconds) or now."""
    seconds = int(time.time() if at is None else at)
    with _lock:
        count = next(_counter) & 0xFFFFFF
    raw = seconds.to_bytes(4, "big") + _process_random + count.to_bytes(3, "big")
    return raw.hex()


def is_valid_id(value: str) -> bool:
    """Tell whether ``value`` has the 24 lowercase hex digits of an identifier."""
    return bool(_ID_PATTERN.match(value))


def id_timestamp(value: str) -> datetime:
    """Return the UTC second encoded in an identifier."""
    return datetime.fromtimestamp(int(value[:8], 16), tz=UTC)
