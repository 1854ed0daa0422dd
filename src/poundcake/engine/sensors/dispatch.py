"""A sensor's ``dispatch``: a trigger and payload become a stored, announced trigger instance.

The trigger is named as StackStorm sensors name it: a reference (``pack.name``, or a
parameterised trigger's ``pack.<uuid>``) or a trigger dictionary (``id``, ``uid``, or ``type``
with ``parameters``, as ``add_trigger`` hands it over). The payload is checked against the
trigger type's ``payload_schema``: always for the engine's own ``core.st2.*`` types, and for the
others when ``[system] validate_trigger_payload`` is true (StackStorm's default); a payload
that fails is logged and not dispatched, or dispatched with a warning when validation is off.

Dispatching returns at once. A writer thread stores what was dispatched in batches, one
transaction each, then rings the rules engine once per batch: a sensor dispatching thousands a
second costs one commit and one message per batch, not one per instance.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.engine.packs.errors import FieldError
from poundcake.engine.packs.schema import validate
from poundcake.engine.runtime import EngineRuntime
from poundcake.engine.triggers.instances import (
    announce_trigger_instance_batch,
    create_trigger_instances,
)
from poundcake.engine.triggers.models import TriggerDB, TriggerTypeDB
from poundcake.engine.triggers.service import SYSTEM_PACK

logger = logging.getLogger(__name__)

RESOLVED_FOR = 5.0
BATCH_LIMIT = 1000
RETRY_AFTER = 1.0


@dataclass(frozen=True)
class ResolvedTrigger:
    """The stored trigger a dispatch names, and its type's payload schema."""

    ref: str
    type: str
    payload_schema: dict[str, Any]

    @property
    def is_system(self) -> bool:
        """Tell whether the type is one of the engine's own (always validated)."""
        return self.type.startswith(f"{SYSTEM_PACK}.st2.")


def _trigger_key(trigger: Any) -> str:
    if isinstance(trigger, Mapping):
        if trigger.get("id"):
            return f"id:{trigger['id']}"
        if trigger.get("uid"):
            return f"uid:{trigger['uid']}"
        return f"type:{trigger.get('type')}:{sorted((trigger.get('parameters') or {}).items())}"
    return f"ref:{trigger}"


def find_trigger(*, session: Session, trigger: Any) -> TriggerDB | None:
    """The trigger a reference or trigger dictionary names, if it exists."""
    if isinstance(trigger, Mapping):
        if trigger.get("id"):
            return session.get(TriggerDB, str(trigger["id"]))
        if trigger.get("uid"):
            return session.scalars(
                sa.select(TriggerDB).where(TriggerDB.uid == str(trigger["uid"]))
            ).first()
        if trigger.get("ref"):
            return find_trigger(session=session, trigger=str(trigger["ref"]))
        wanted = dict(trigger.get("parameters") or {})
        candidates = session.scalars(
            sa.select(TriggerDB).where(TriggerDB.type == str(trigger.get("type")))
        )
        return next((found for found in candidates if (found.parameters or {}) == wanted), None)
    if not isinstance(trigger, str) or not trigger:
        return None
    return session.scalars(sa.select(TriggerDB).where(TriggerDB.ref == trigger)).first()


def resolve_trigger(*, session: Session, trigger: Any) -> ResolvedTrigger | None:
    """The trigger ``trigger`` names and its type's payload schema; None if there is none."""
    found = find_trigger(session=session, trigger=trigger)
    if found is None:
        return None
    schema = session.scalar(
        sa.select(TriggerTypeDB.payload_schema).where(TriggerTypeDB.ref == found.type)
    )
    return ResolvedTrigger(ref=found.ref, type=found.type, payload_schema=dict(schema or {}))


def payload_problem(
    resolved: ResolvedTrigger, payload: Any, *, validate_payload: bool
) -> str | None:
    """Why ``payload`` must not be dispatched to ``resolved``, or None when it may be."""
    if not resolved.payload_schema or not (resolved.is_system or validate_payload):
        return None
    if not isinstance(payload, Mapping):
        return f"payload: must be an object, not {type(payload).__name__}"
    try:
        validate(payload, resolved.payload_schema, "payload")
    except FieldError as error:
        return str(error)
    return None


class TriggerDispatcher:
    """Checks, queues and stores what a sensor dispatches."""

    def __init__(self, runtime: EngineRuntime, *, validate_payload: bool) -> None:
        self.runtime = runtime
        self.validate_payload = validate_payload
        self._resolved: dict[str, tuple[float, ResolvedTrigger | None]] = {}
        self._queue: queue.SimpleQueue[tuple[str, dict[str, Any], datetime]] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self._writer = threading.Thread(
            target=self._write_forever, name="trigger-writer", daemon=True
        )
        self._writer.start()

    def _resolve(self, trigger: Any) -> ResolvedTrigger | None:
        key = _trigger_key(trigger)
        now = time.monotonic()
        cached = self._resolved.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        resolved = in_transaction(
            self.runtime.sessions, lambda session: resolve_trigger(session=session, trigger=trigger)
        )
        self._resolved[key] = (now + RESOLVED_FOR, resolved)
        return resolved

    def dispatch(self, trigger: Any, payload: Any = None) -> None:
        """Check and queue one occurrence of ``trigger``; a refused one is logged."""
        occurred = utcnow()
        payload = {} if payload is None else payload
        resolved = self._resolve(trigger)
        if resolved is None:
            logger.warning(
                'Trigger "%s" does not exist; not dispatching its payload %s', trigger, payload
            )
            return
        if not self._acceptable(resolved, payload):
            return
        with self._idle:
            self._pending += 1
        self._queue.put((resolved.ref, payload, occurred))

    def _acceptable(self, resolved: ResolvedTrigger, payload: Any) -> bool:
        problem = payload_problem(resolved, payload, validate_payload=self.validate_payload)
        if problem is None:
            return True
        logger.warning(
            "Trigger payload validation failed and validation is enabled, not dispatching "
            'a trigger "%s" (%s): %s',
            resolved.ref,
            payload,
            problem,
        )
        return False

    def _take_batch(self) -> list[tuple[str, dict[str, Any], datetime]]:
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < BATCH_LIMIT:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _store(self, batch: list[tuple[str, dict[str, Any], datetime]]) -> None:
        while True:
            try:
                instances = in_transaction(
                    self.runtime.sessions,
                    lambda session: create_trigger_instances(session=session, occurrences=batch),
                )
                break
            except sa.exc.SQLAlchemyError:
                logger.exception(
                    "Could not store %d trigger instances; trying again in %.0f s",
                    len(batch),
                    RETRY_AFTER,
                )
                time.sleep(RETRY_AFTER)
        announce_trigger_instance_batch(self.runtime.publisher, instances)

    def _write_forever(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                if self._stopping.is_set():
                    return
                continue
            self._store(batch)
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until everything dispatched is stored; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Store what is queued, then stop the writer."""
        if not self.flush(timeout):
            logger.error("Trigger instances dispatched in the last %.0f s were not stored", timeout)
        self._stopping.set()
        self._writer.join(timeout=1.0)
