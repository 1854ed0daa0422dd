"""The statuses of every execution an action runner's workflows wait on, read together.

A workflow (the ``steps`` and ``action-chain`` runners) blocks a runner thread while its child
runs, reading the child's and its own status every poll interval to see the child end or a
cancel asked. Read one workflow at a time, ``N`` workflows in flight cost ``N`` queries per
interval: in an alert storm a runner process holds up to ``[actionrunner]
workflow_concurrency`` workflows, and the reads grow with the backlog they are part of.
:class:`StatusBoard` reads every watched execution in one query per interval, from one thread,
and wakes each waiter with the new reading. A reading that fails is handed to the waiters as
the error it raised, as their own query would have.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.engine.executions.models import ExecutionDB

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reading:
    """One execution's status and runner type as a sweep found it."""

    status: str
    runner_type: str


class Watch:
    """A waiter's view of the board: each ``next`` is a sweep newer than the one before."""

    def __init__(self, board: StatusBoard, ids: tuple[str, ...]) -> None:
        self._board = board
        self._ids = ids
        self._seen = board.generation

    def next(self) -> dict[str, Reading]:
        """The watched executions found by the next sweep (missing ones are gone)."""
        self._seen, found = self._board.after(self._seen, self._ids, self._board.stalled_after)
        return found


class StatusBoard:
    """Reads the watched executions' statuses every ``poll_interval`` seconds, all at once."""

    def __init__(self, sessions: sessionmaker[Session], poll_interval: float) -> None:
        self._sessions = sessions
        self._interval = poll_interval
        # A waiter given no reading for this long raises rather than waits on a dead board.
        self.stalled_after = max(60.0, poll_interval * 100)
        self._changed = threading.Condition()
        self._watched: Counter[str] = Counter()
        self._readings: dict[str, Reading] = {}
        self._swept: frozenset[str] = frozenset()
        self._error: Exception | None = None
        self.generation = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watching(self, ids: Iterable[str]) -> Iterator[Watch]:
        """Watch ``ids`` while the block runs."""
        watched = tuple(dict.fromkeys(ids))
        with self._changed:
            self._watched.update(watched)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._sweep_loop, name="status-board", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()
            watch = Watch(self, watched)
        try:
            yield watch
        finally:
            with self._changed:
                self._watched.subtract(watched)
                for execution_id in watched:
                    if self._watched[execution_id] <= 0:
                        del self._watched[execution_id]
                        self._readings.pop(execution_id, None)

    def after(
        self, seen: int, ids: tuple[str, ...], timeout: float
    ) -> tuple[int, dict[str, Reading]]:
        """Wait for a sweep newer than ``seen`` that read ``ids`` (one already under way when
        they were added did not); return its generation and the ``ids`` found."""

        def swept() -> bool:
            return self._stop.is_set() or (self.generation > seen and self._swept.issuperset(ids))

        if self._stop.is_set():
            # Closed while workflows still wait (the runner is stopping): each reads alone.
            time.sleep(self._interval)
            return seen, self._read(list(ids))
        with self._changed:
            if not self._changed.wait_for(swept, timeout):
                raise TimeoutError(f"no status reading of {', '.join(ids)} within {timeout:g} s")
            if self._stop.is_set():
                return seen, self._read(list(ids))
            if self._error is not None:
                raise self._error
            found = {key: self._readings[key] for key in ids if key in self._readings}
            return self.generation, found

    def close(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _sweep_loop(self) -> None:
        while not self._stop.is_set():
            with self._changed:
                self._changed.wait_for(lambda: bool(self._watched) or self._stop.is_set())
                ids = sorted(self._watched)
            if self._stop.is_set():
                return
            readings: dict[str, Reading] = {}
            error: Exception | None = None
            try:
                readings = self._read(ids)
            except Exception as raised:  # noqa: BLE001 - handed to every waiter, who raises it
                logger.warning("Reading the statuses of %d executions failed: %s", len(ids), raised)
                error = raised
            with self._changed:
                self._readings.update(readings)
                for gone in set(ids) - readings.keys():
                    self._readings.pop(gone, None)
                self._swept = frozenset(ids)
                self._error = error
                self.generation += 1
                self._changed.notify_all()
            self._stop.wait(self._interval)

    def _read(self, ids: list[str]) -> dict[str, Reading]:
        query = sa.select(ExecutionDB.id, ExecutionDB.status, ExecutionDB.runner_type).where(
            ExecutionDB.id.in_(ids)
        )
        with self._sessions() as session:
            rows = session.execute(query).all()
        return {row.id: Reading(row.status, row.runner_type) for row in rows}
