"""The ``st2scheduler`` process: consume requested notifications, decide in batches, sweep.

Messages are gathered for up to ``batch_wait`` seconds (or ``batch_size`` of them), decided in
one transaction, acknowledged only after commit, and the scheduled work is then handed to the
runners. A periodic sweep re-examines delayed work and requested work whose message was lost,
re-sends work the runners never claimed while their queue is empty, and abandons executions
whose runner stopped renewing its lease (a runner killed with SIGKILL).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from kombu.messaging import Consumer
from kombu.transport.base import Message
from sqlalchemy.orm import Session

from poundcake.db.retry import in_transaction
from poundcake.db.session import unit_of_work
from poundcake.engine.executions.service import abandon_expired
from poundcake.engine.messaging import (
    RUNNER_QUEUE,
    SCHEDULER_QUEUE,
    WorkMessage,
    make_connection,
)
from poundcake.engine.runtime import EngineRuntime
from poundcake.engine.scheduler.service import (
    BatchDecision,
    WorkItem,
    due_for_retry,
    schedule_batch,
    unclaimed,
    work_items,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerSettings:
    """Tuning of the scheduler loop; defaults suit a small host."""

    batch_size: int = 200
    batch_wait: float = 0.02
    sweep_interval: float = 2.0
    lost_after: float = 5.0
    unclaimed_after: float = 15.0
    sweep_limit: int = 500


def _requested(body: dict[str, Any]) -> list[str]:
    """The live action ids a requested message names: one, or a rules engine's batch."""
    many = body.get("liveactions")
    if isinstance(many, list):
        return [str(item.get("liveaction_id", "")) for item in many if isinstance(item, dict)]
    return [str(body.get("liveaction_id", ""))]


def _work_message(liveaction_id: str, item: WorkItem | None) -> WorkMessage:
    """The work message of a scheduled live action (an unknown one goes to the runners, whose
    claim drops it)."""
    if item is None:
        return WorkMessage(liveaction_id, "")
    return WorkMessage(liveaction_id, item.execution_id, item.workflow, item.runner_type)


class Scheduler:
    """One scheduler process; several may run against the same database and broker."""

    def __init__(self, runtime: EngineRuntime, settings: SchedulerSettings | None = None) -> None:
        self.runtime = runtime
        self.settings = settings or SchedulerSettings()
        self._pending: list[tuple[dict[str, Any], Message]] = []
        self._next_sweep = 0.0

    def _on_message(self, body: dict[str, Any], message: Message) -> None:
        self._pending.append((body, message))

    def decide(self, liveaction_ids: list[str]) -> int:
        """Schedule what may run; hand it to the runners after commit; return how many."""

        def decide_batch(session: Session) -> tuple[BatchDecision, dict[str, WorkItem]]:
            decision = schedule_batch(session, liveaction_ids)
            return decision, work_items(session, decision.scheduled)

        decision, items = in_transaction(self.runtime.sessions, decide_batch)
        self.runtime.publisher.work_many(
            [
                _work_message(liveaction_id, items.get(liveaction_id))
                for liveaction_id in decision.scheduled
            ]
        )
        self.runtime.publisher.events(
            "st2.execution__update",
            [
                {
                    "liveaction_id": liveaction_id,
                    "execution_id": item.execution_id
                    if (item := items.get(liveaction_id))
                    else None,
                }
                for liveaction_id in decision.scheduled + decision.canceled + decision.delayed
            ],
        )
        return len(decision.scheduled)

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            self.decide([liveaction_id for body, _ in batch for liveaction_id in _requested(body)])
        except sa.exc.SQLAlchemyError:
            logger.exception(
                "Scheduling %d live actions failed; they will be redelivered", len(batch)
            )
            for _, message in batch:
                message.requeue()
            time.sleep(0.5)
            return
        for _, message in batch:
            message.ack()

    def sweep(self, runner_queue_depth: int | None) -> None:
        """Look again at delayed, lost and unclaimed work, and abandon expired leases."""
        limit = self.settings.sweep_limit
        retry = in_transaction(
            self.runtime.sessions,
            lambda session: due_for_retry(
                session, lost_after=self.settings.lost_after, limit=limit
            ),
        )
        abandoned = in_transaction(
            self.runtime.sessions, lambda session: abandon_expired(session, limit=limit)
        )
        if retry:
            self.decide(retry)
        for liveaction_id in abandoned:
            logger.warning(
                "Abandoned live action %s: its runner stopped renewing the lease", liveaction_id
            )
            self.runtime.publisher.event("st2.execution__update", {"liveaction_id": liveaction_id})
        if runner_queue_depth == 0:
            with unit_of_work(self.runtime.sessions) as session:
                stale = unclaimed(session, older_than=self.settings.unclaimed_after, limit=limit)
            for item in stale:
                logger.info("Re-sending unclaimed work %s", item.liveaction_id)
            self.runtime.publisher.work_many(
                [_work_message(item.liveaction_id, item) for item in stale]
            )

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set."""
        settings = self.settings
        with make_connection(self.runtime.config.messaging_url) as connection:
            channel = connection.channel()
            runner_queue = RUNNER_QUEUE(channel)
            runner_queue.declare()
            consumer = Consumer(
                channel, queues=[SCHEDULER_QUEUE], callbacks=[self._on_message], accept=["json"]
            )
            consumer.qos(prefetch_count=settings.batch_size)
            with consumer:
                logger.info("Scheduler consuming %s", SCHEDULER_QUEUE.name)
                while not stop.is_set():
                    connection.heartbeat_check()
                    deadline = time.monotonic() + settings.batch_wait
                    try:
                        connection.drain_events(
                            timeout=0.5 if not self._pending else settings.batch_wait
                        )
                        while (
                            len(self._pending) < settings.batch_size and time.monotonic() < deadline
                        ):
                            connection.drain_events(timeout=max(0.001, deadline - time.monotonic()))
                    except TimeoutError:
                        pass
                    self._flush()
                    if time.monotonic() >= self._next_sweep:
                        self._next_sweep = time.monotonic() + settings.sweep_interval
                        try:
                            self.sweep(_queue_depth(runner_queue))
                        except sa.exc.SQLAlchemyError:
                            logger.exception("The sweep failed; it runs again next interval")
                self._flush()


def _queue_depth(queue: Any) -> int | None:
    try:
        _, depth, _ = queue.queue_declare(passive=True)
        return int(depth)
    except Exception:
        logger.debug("Could not read the runner queue depth", exc_info=True)
        return None
