"""Execution output as it arrives: buffered briefly, stored in ``execution_output_db``, announced.

Consecutive chunks of one stream are coalesced and written at most every ``flush_interval``
seconds or ``flush_bytes`` bytes, so a chatty action costs few inserts and a large one never
holds its output in memory until the end. A run of chunks is kept as a list of pieces and
joined once at the flush: appending each line to a growing string would copy the buffer on
every line, quadratic in the lines of one flush. On MariaDB a chunk is sent as its UTF-8 bytes
(read as utf8mb4 by the server): the driver escapes a ``str`` character by character, the
largest cost of storing a chatty action's output.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.session import unit_of_work
from poundcake.engine.documents import isoformat
from poundcake.engine.executions.models import ExecutionOutputDB
from poundcake.engine.executions.service import utcnow
from poundcake.engine.messaging import Publisher
from poundcake.ids import new_id


class OutputWriter:
    """An OutputSink for one execution."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: Publisher,
        *,
        execution_id: str,
        action_ref: str,
        runner_ref: str,
        flush_interval: float = 0.25,
        flush_bytes: int = 256 * 1024,
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._execution_id = execution_id
        self._action_ref = action_ref
        self._runner_ref = runner_ref
        self._flush_interval = flush_interval
        self._flush_bytes = flush_bytes
        self._lock = threading.Lock()
        self._runs: list[tuple[str, list[str]]] = []
        self._size = 0
        self._last_flush = time.monotonic()

    def __call__(self, output_type: str, data: str) -> None:
        with self._lock:
            if self._runs and self._runs[-1][0] == output_type:
                self._runs[-1][1].append(data)
            else:
                self._runs.append((output_type, [data]))
            self._size += len(data)
            due = self._size >= self._flush_bytes
            due = due or time.monotonic() - self._last_flush >= self._flush_interval
        if due:
            self.flush()

    def flush(self) -> None:
        """Store and announce what is buffered."""
        with self._lock:
            runs, self._runs, self._size = self._runs, [], 0
            self._last_flush = time.monotonic()
            if not runs:
                return
            now = utcnow()
            rows = [
                {
                    "id": new_id(),
                    "execution_id": self._execution_id,
                    "action_ref": self._action_ref,
                    "runner_ref": self._runner_ref,
                    "timestamp": now,
                    "output_type": output_type,
                    "data": "".join(pieces),
                }
                for output_type, pieces in runs
            ]
            del runs
            with unit_of_work(self._sessions) as session:
                session.execute(_insert(session, rows))
            for row in rows:
                self._publisher.event(
                    "st2.execution.output__create", {**row, "timestamp": isoformat(now)}
                )


def _insert(session: Session, rows: list[dict[str, Any]]) -> sa.Insert:
    """One INSERT of ``rows``; on MariaDB each chunk's text goes as its UTF-8 bytes."""
    if session.get_bind().dialect.name not in ("mysql", "mariadb"):
        return sa.insert(ExecutionOutputDB).values(rows)
    as_text = [
        {**row, "data": sa.cast(sa.literal(row["data"].encode(), sa.LargeBinary), sa.Text)}
        for row in rows
    ]
    return sa.insert(ExecutionOutputDB).values(as_text)
