"""The ``st2notifier`` process: post notify triggers and apply post-run policies.

Each round processes batches of finished executions marked for it (see
:mod:`poundcake.engine.notifier.service`) until none are left, then waits for a doorbell (an
``st2.execution__update`` event on the notifiers' queue, sent after every execution change,
its end included) or ``poll_interval``, whichever comes first: the poll finds what was marked
without a doorbell (a broker outage, a lost message), and with the broker down the notifier
polls alone (:mod:`poundcake.engine.doorbell`).
After each committed batch it announces the new trigger instances to the rules engine and hands
the retries to the scheduler; a broker outage only delays them (the rules engine and the
scheduler also poll the database). Several notifiers may run.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from poundcake.config_sections import NotifierSection
from poundcake.db.retry import in_transaction
from poundcake.engine.doorbell import run_rounds
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.messaging import NOTIFIER_QUEUE, hand_over
from poundcake.engine.notifier.service import NotifierOutcome, process_batch
from poundcake.engine.runtime import EngineRuntime
from poundcake.engine.triggers.instances import announce_trigger_instances

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotifierSettings:
    """Tuning of the notifier loop."""

    batch_size: int = 100
    poll_interval: float = 0.5

    @classmethod
    def from_section(cls, section: NotifierSection) -> NotifierSettings:
        """Build the settings from st2.conf's ``[notifier]``."""
        return cls(batch_size=section.batch_size, poll_interval=section.poll_interval)


class Notifier:
    """One notifier process."""

    def __init__(self, runtime: EngineRuntime, settings: NotifierSettings | None = None) -> None:
        self.runtime = runtime
        self.settings = settings or NotifierSettings()
        self.cipher = DatastoreCipher.from_key_file(runtime.config.datastore_key_path)

    def process_pending(self) -> int:
        """Process marked executions until none are left; return how many."""
        total = 0
        while True:
            outcome: NotifierOutcome = in_transaction(
                self.runtime.sessions,
                lambda session: process_batch(
                    session, limit=self.settings.batch_size, cipher=self.cipher
                ),
            )
            announce_trigger_instances(self.runtime.publisher, outcome.instances)
            for requested in outcome.requested:
                hand_over(self.runtime.publisher, requested.liveaction_id, requested.execution_id)
            total += outcome.processed
            if outcome.processed:
                logger.info(
                    "Processed %d finished executions: %d notify triggers, %d retries",
                    outcome.processed,
                    len(outcome.instances),
                    len(outcome.requested),
                )
            if outcome.processed < self.settings.batch_size:
                return total

    def _round(self) -> None:
        try:
            self.process_pending()
        except Exception:
            logger.exception("A notifier round failed; the next one tries again")

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set."""
        logger.info(
            "Notifier woken by execution updates, polling every %ss", self.settings.poll_interval
        )
        run_rounds(
            url=self.runtime.config.messaging_url,
            queue=NOTIFIER_QUEUE,
            work=self._round,
            poll_interval=self.settings.poll_interval,
            stop=stop,
        )
        logger.info("Notifier stopped")
