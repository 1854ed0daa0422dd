"""How many intake transactions run at once: no more than the database pool keeps connections.

The webhook's transaction runs on a threadpool of 40 threads, and the pool keeps ``pool_size``
connections open; every transaction beyond that borrows an overflow connection, which
SQLAlchemy closes when it is returned. Under a burst each such request then pays a TCP connect,
MariaDB's handshake and PyMySQL's SSL context (a quarter of the intake's CPU at 16 concurrent
requests, measured with ``bench/intake.py``). Waiting for a slot instead keeps every
transaction on a warm connection; the wait is bounded like the wait for a pooled connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

T = TypeVar("T")


class TransactionSlots:
    """At most ``slots`` callers inside :meth:`run` at once; a caller waits ``timeout`` at most."""

    def __init__(self, slots: int, *, timeout: float | None) -> None:
        self._semaphore = threading.BoundedSemaphore(slots)
        self._timeout = timeout

    def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` in a slot; the pool's ``TimeoutError`` (a 503) if none came in time."""
        if not self._semaphore.acquire(timeout=self._timeout):
            raise sa.exc.TimeoutError(
                f"no database connection for the intake within {self._timeout} s"
            )
        try:
            return work()
        finally:
            self._semaphore.release()
