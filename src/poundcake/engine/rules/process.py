"""The ``st2rulesengine`` process: take pending trigger instances, enforce rules, hand over work.

The database is the queue: each round takes the oldest pending instances in batches until none
are left, then waits for a doorbell (``st2.trigger_instance__create`` on the rules engine's
durable queue) or ``poll_interval``, whichever comes first. Instances stored without a doorbell
(completion triggers, a broker outage) are found by the poll. With the broker down the engine
keeps working by polling alone and reconnects in the background. Several rules engines may run.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from poundcake.config_sections import RulesEngineSection
from poundcake.db.retry import in_transaction
from poundcake.engine.doorbell import run_rounds
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.messaging import RULES_ENGINE_QUEUE, hand_over_many
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


class RulesEngine:
    """One rules engine process."""

    def __init__(self, runtime: EngineRuntime, settings: RulesEngineSettings | None = None) -> None:
        self.runtime = runtime
        self.settings = settings or RulesEngineSettings()
        cipher = DatastoreCipher.from_key_file(runtime.config.datastore_key_path)
        self.enforcer = Enforcer(system_user=runtime.config.system_user, cipher=cipher)

    def process_pending(self) -> int:
        """Process pending instances until none are left; return how many were processed."""
        total = 0
        while True:
            outcome: BatchOutcome = in_transaction(
                self.runtime.sessions,
                lambda session: self.enforcer.process_batch(
                    session, limit=self.settings.batch_size
                ),
            )
            hand_over_many(
                self.runtime.publisher,
                [
                    (requested.liveaction_id, requested.execution_id)
                    for requested in outcome.requested
                ],
            )
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
