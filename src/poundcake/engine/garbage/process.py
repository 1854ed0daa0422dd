"""The ``st2garbagecollector`` process: every ``collection_interval``, remove what is past its TTL.

Each kind (executions, output, trigger instances) is removed in batches of ``batch_size`` rows,
one short transaction each, with ``sleep_delay`` seconds between batches so intake and runners
never wait long on the collector's locks. A kind ends when a batch comes back short. A database
error ends that kind's collection for this interval only; the loop itself never stops on one.

With ``purge_inquiries`` (StackStorm's switch, off by default as there) each collection also
ends in ``timeout`` the inquiries waiting longer than their ``ttl`` minutes and resumes their
workflows (:func:`poundcake.engine.inquiries.service.expire_inquiries`), in batches as well;
an inquiry therefore times out up to ``collection_interval`` seconds after its ttl.

Several collectors may run (one per host, say); each collection is done under the coordination
lock :data:`LOCK` (``[coordination]``), so while one collects the others skip that interval
instead of deleting the same rows beside it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa

from poundcake.config_sections import GarbageCollectorSection
from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.engine.coordination.service import singleton
from poundcake.engine.garbage.service import (
    Cursor,
    Purge,
    purge_execution_output,
    purge_executions,
    purge_trigger_instances,
)
from poundcake.engine.inquiries.service import announce_answered, expire_inquiries
from poundcake.engine.runtime import EngineRuntime

logger = logging.getLogger(__name__)

LOCK = "st2garbagecollector"

TABLES = (
    "executions",
    "liveactions",
    "execution_output",
    "trigger_instances",
    "workflow_executions",
)


@dataclass(frozen=True)
class GarbageCollectorSettings:
    """Retention and pacing; TTLs are in days and ``None`` keeps that kind forever."""

    collection_interval: float = 600.0
    sleep_delay: float = 2.0
    batch_size: int = 500
    action_executions_ttl: float | None = None
    action_executions_output_ttl: float | None = 7.0
    trigger_instances_ttl: float | None = None
    purge_inquiries: bool = False

    @classmethod
    def from_section(cls, section: GarbageCollectorSection) -> GarbageCollectorSettings:
        """Take the settings of st2.conf's ``[garbagecollector]``."""
        return cls(
            collection_interval=section.collection_interval,
            sleep_delay=section.sleep_delay,
            batch_size=section.batch_size,
            action_executions_ttl=section.action_executions_ttl,
            action_executions_output_ttl=section.action_executions_output_ttl,
            trigger_instances_ttl=section.trigger_instances_ttl,
            purge_inquiries=section.purge_inquiries,
        )

    def kinds(self) -> list[tuple[str, float, Purge]]:
        """The kinds with a TTL, in the order they are collected."""
        kinds: list[tuple[str, float | None, Purge]] = [
            ("executions", self.action_executions_ttl, purge_executions),
            ("execution output", self.action_executions_output_ttl, purge_execution_output),
            ("trigger instances", self.trigger_instances_ttl, purge_trigger_instances),
        ]
        return [(name, ttl, purge) for name, ttl, purge in kinds if ttl is not None]


class GarbageCollector:
    """One collector; several may run against the same database."""

    def __init__(
        self, runtime: EngineRuntime, settings: GarbageCollectorSettings | None = None
    ) -> None:
        self.runtime = runtime
        self.settings = settings or GarbageCollectorSettings()
        self._stop = threading.Event()

    def collect_once(self, now: datetime | None = None) -> dict[str, int]:
        """Remove everything past its TTL at ``now``; return the rows removed per table."""
        now = now or utcnow()
        removed = dict.fromkeys(TABLES, 0)
        for name, ttl, purge in self.settings.kinds():
            if self._stop.is_set():
                break
            try:
                self._collect(name, purge, now - timedelta(days=ttl), removed)
            except sa.exc.SQLAlchemyError:
                logger.exception("Collecting %s failed; it runs again next interval", name)
        logger.info(
            "Garbage collection removed %d executions, %d live actions, %d output chunks, "
            "%d trigger instances and %d workflow executions",
            removed["executions"],
            removed["liveactions"],
            removed["execution_output"],
            removed["trigger_instances"],
            removed["workflow_executions"],
        )
        if self.settings.purge_inquiries and not self._stop.is_set():
            try:
                self.time_out_inquiries(now)
            except sa.exc.SQLAlchemyError:
                logger.exception("Timing out inquiries failed; it runs again next interval")
        return removed

    def collect_if_alone(self) -> dict[str, int] | None:
        """Collect under :data:`LOCK`; None when another collector holds it."""
        with singleton(self.runtime.coordinator(), LOCK) as held:
            if held:
                return self.collect_once()
        logger.info("Another garbage collector is collecting (it holds %s); skipping", LOCK)
        return None

    def time_out_inquiries(self, now: datetime | None = None) -> int:
        """End the inquiries past their ttl at ``now`` in timeout; return how many."""
        now = now or utcnow()
        limit = self.settings.batch_size
        user = self.runtime.config.system_user
        cursor: tuple[datetime, str] | None = None
        count = 0
        while True:
            one_batch = partial(expire_inquiries, now=now, limit=limit, user=user, after=cursor)
            batch = in_transaction(self.runtime.sessions, one_batch)
            for answered in batch.expired:
                announce_answered(self.runtime.publisher, answered)
            count += len(batch.expired)
            cursor = batch.cursor
            if batch.read < limit or self._stop.wait(self.settings.sleep_delay):
                break
        logger.info('Marked %d ttl-expired inquiries as "timeout"', count)
        return count

    def _collect(self, name: str, purge: Purge, before: datetime, removed: dict[str, int]) -> None:
        limit = self.settings.batch_size
        cursor: Cursor | None = None
        while True:
            one_batch = partial(purge, before=before, limit=limit, after=cursor)
            batch = in_transaction(self.runtime.sessions, one_batch)
            for table, count in batch.removed.items():
                removed[table] += count
            logger.debug("Removed %s of %s in one batch (%d read)", batch.removed, name, batch.read)
            cursor = batch.cursor
            if batch.is_last(limit) or self._stop.wait(self.settings.sleep_delay):
                return

    def run(self, stop: threading.Event) -> None:
        """Collect every ``collection_interval`` seconds until ``stop`` is set."""
        self._stop = stop
        kinds = [name for name, _, _ in self.settings.kinds()]
        if self.settings.purge_inquiries:
            kinds.append("inquiries past their ttl (timed out)")
        logger.info(
            "Garbage collector removing %s every %ss",
            ", ".join(kinds) or "nothing (no TTL is set)",
            self.settings.collection_interval,
        )
        while not stop.is_set():
            try:
                self.collect_if_alone()
            except Exception:
                logger.exception("Garbage collection failed; it runs again next interval")
            stop.wait(self.settings.collection_interval)
