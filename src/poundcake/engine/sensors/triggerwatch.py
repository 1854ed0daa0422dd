"""Tell a sensor about the triggers of its types as rules create, change and delete them.

StackStorm's sensors learn of their triggers through ``add_trigger``, ``update_trigger`` and
``remove_trigger`` (a file to watch, a URL to poll). The watcher reads the triggers of the
sensor's types from the database at start (each one is added) and again every ``interval``
seconds, and calls the sensor with what changed, each trigger as its API document. The database
is the record, so a trigger created while the sensor was down is seen when it comes back.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.retry import in_transaction
from poundcake.engine.runtime import EngineRuntime
from poundcake.engine.triggers.documents import trigger_document
from poundcake.engine.triggers.models import TriggerDB

logger = logging.getLogger(__name__)

WATCH_INTERVAL = 1.0


def triggers_of_types(*, session: Session, types: list[str]) -> dict[str, dict[str, Any]]:
    """Every trigger of ``types`` as its API document, by id."""
    if not types:
        return {}
    rows = session.scalars(sa.select(TriggerDB).where(TriggerDB.type.in_(types)))
    return {row.id: trigger_document(row) for row in rows}


class TriggerWatcher:
    """Calls a sensor's trigger methods from a thread of its own."""

    def __init__(
        self,
        runtime: EngineRuntime,
        types: list[str],
        sensor: Any,
        interval: float = WATCH_INTERVAL,
    ) -> None:
        self.runtime = runtime
        self.types = list(types)
        self.sensor = sensor
        self.interval = interval
        self.known: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="trigger-watcher", daemon=True)

    def start(self) -> None:
        """Start watching, if the sensor has trigger types."""
        if self.types:
            self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()

    def check(self) -> None:
        """Compare the stored triggers with those the sensor knows and tell it the changes."""
        current = in_transaction(
            self.runtime.sessions,
            lambda session: triggers_of_types(session=session, types=self.types),
        )
        for trigger_id, document in current.items():
            before = self.known.get(trigger_id)
            if before is None:
                self._call("add_trigger", document)
            elif before != document:
                self._call("update_trigger", document)
        for trigger_id, document in self.known.items():
            if trigger_id not in current:
                self._call("remove_trigger", document)
        self.known = current

    def _call(self, method: str, document: dict[str, Any]) -> None:
        logger.debug('Calling sensor "%s" method (trigger.type=%s)', method, document["type"])
        try:
            getattr(self.sensor, method)(trigger=document)
        except Exception:
            logger.exception("Sensor %s(%s) failed", method, document.get("ref"))

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except sa.exc.SQLAlchemyError:
                logger.exception("Could not read the sensor's triggers; trying again")
            self._stop.wait(self.interval)
