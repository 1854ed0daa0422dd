"""The ``st2rulesengine`` process: take pending trigger instances, enforce rules, hand over work.

Executions of actions no concurrency policy holds back are written ``scheduled`` and go straight
to the runners; the others go to the scheduler. The database is the queue: each round takes the
oldest pending instances in batches until none are left, then waits for a doorbell
(``st2.trigger_instance__create`` on the rules engine's durable queue) or ``poll_interval``,
whichever comes first. Instances stored without a doorbell (completion triggers, a broker
outage) are found by the poll. With the broker down the engine keeps working by polling alone
and reconnects in the background. Several rules engines may run.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from poundcake.config_sections import RulesEngineSection
from poundcake.db.retry import in_transaction
from poundcake.engine.doorbell import run_rounds
from poundcake.engine.executions.service import RequestedExecution
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.messaging import (
    RULES_ENGINE_QUEUE,
    Publisher,
    WorkMessage,
    hand_over_many,
    hand_over_scheduled,
)
from poundcake.engine.rules.enforcer import BatchOutcome, Enforcer
from poundcake.engine.runtime import EngineRuntime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RulesEngineSettings:
    """Tuning of the rules engine loop."""

    batch_size: int = 100
    poll_interval: float = 1.0

    @classmethod
    def from_section(cls, section: RulesEngineSection) -> RulesEngineSettings:
        """Build the settings from st2.conf's ``[rulesengine]``."""
        return cls(batch_size=section.batch_size, poll_interval=section.poll_interval)


def hand_over_requested(publisher: Publisher, requested: list[RequestedExecution]) -> None:
    """After commit, hand what a batch requested over: to the runners what it wrote
    ``scheduled``, to the scheduler the rest."""
    scheduled = [item for item in requested if item.status == ExecutionStatus.SCHEDULED]
    hand_over_scheduled(
        publisher,
        [
            WorkMessage(item.liveaction_id, item.execution_id, item.workflow, item.runner_type)
            for item in scheduled
        ],
    )
    hand_over_many(
        publisher,
        [
            (item.liveaction_id, item.execution_id)
            for item in requested
            if item.status != ExecutionStatus.SCHEDULED
        ],
    )


class _HandOver:
    """Hands committed batches over in a thread of its own, in commit order, so that the next
    batch is read and enforced while the broker takes the last one's messages."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self._batches: queue.Queue[list[RequestedExecution]] = queue.Queue()
        self._thread: threading.Thread | None = None

    def put(self, requested: list[RequestedExecution]) -> None:
        """Hand ``requested`` over after the batches put before it."""
        if not requested:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hand-over", daemon=True)
            self._thread.start()
        self._batches.put(requested)

    def wait(self) -> None:
        """Return once every batch put so far was handed over."""
        self._batches.join()

    def _run(self) -> None:
        while True:
            requested = self._batches.get()
            try:
                hand_over_requested(self._publisher, requested)
            except Exception:
                # Committed work is never lost: the scheduler's sweep finds what was not sent.
                logger.exception("Handing %d executions over failed", len(requested))
            finally:
                self._batches.task_done()


class RulesEngine:
    """One rules engine process."""

    def __init__(self, runtime: EngineRuntime, settings: RulesEngineSettings | None = None) -> None:
        self.runtime = runtime
        self.settings = settings or RulesEngineSettings()
        cipher = DatastoreCipher.from_key_file(runtime.config.datastore_key_path)
        self.enforcer = Enforcer(system_user=runtime.config.system_user, cipher=cipher)
        self._hand_over = _HandOver(runtime.publisher)

    def process_pending(self) -> int:
        """Process pending instances until none are left; return how many were processed, once
        what they requested was handed over (a batch is handed over while the next is
        processed)."""
        try:
            return self._process_batches()
        finally:
            self._hand_over.wait()

    def _process_batches(self) -> int:
        total = 0
        while True:
            outcome: BatchOutcome = in_transaction(
                self.runtime.sessions,
                lambda session: self.enforcer.process_batch(
                    session, limit=self.settings.batch_size
                ),
            )
            self._hand_over.put(outcome.requested)
            total += outcome.instances
            if outcome.instances:
                logger.debug(
                    "Processed %d trigger instances: %d enforcements, %d failed",
                    outcome.instances,
                    outcome.enforcements,
                    outcome.failed_instances,
                )
            if outcome.instances < self.settings.batch_size:
                return total

    def _round(self) -> None:
        try:
            self.process_pending()
        except sa.exc.SQLAlchemyError:
            logger.exception("Processing trigger instances failed; retrying next round")
            time.sleep(min(self.settings.poll_interval, 1.0))

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set."""
        run_rounds(
            url=self.runtime.config.messaging_url,
            queue=RULES_ENGINE_QUEUE,
            work=self._round,
            poll_interval=self.settings.poll_interval,
            stop=stop,
        )
        logger.info("Rules engine stopped")
