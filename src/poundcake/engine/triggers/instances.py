"""Trigger instances: storing an occurrence of a trigger, finding them, re-emitting one.

An instance is stored ``pending``; the rules engine takes it from there (``processing``, then
``processed`` or ``processing_failed``). Each stored instance is announced on the event
exchange as ``st2.trigger_instance__create`` once committed. The database is the record: a lost
announcement delays the instance until the rules engine looks for pending ones, never loses it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from kombu.exceptions import ChannelError, KombuError
from kombu.exceptions import ConnectionError as BrokerConnectionError
from sqlalchemy.orm import Session

from poundcake.db.base import table_of
from poundcake.db.types import utcnow
from poundcake.engine.messaging import Publisher
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.exceptions import NotFoundError, ValidationError
from poundcake.ids import new_id

logger = logging.getLogger(__name__)

CREATED_EVENT = "st2.trigger_instance__create"


class TriggerInstanceStatus(StrEnum):
    """Where the rules engine is with an instance (StackStorm's names)."""

    PENDING = "pending"
    PROCESSING = "processing"
    PROCESSED = "processed"
    PROCESSING_FAILED = "processing_failed"


def parse_timestamp(value: str, name: str) -> datetime:
    """Read an ISO-8601 query value (``2000-01-01T12:00:00.000Z``); a naive one is UTC."""
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        raise ValidationError(
            f'{name}: "{value}" is not a timestamp like 2000-01-01T12:00:00.000Z'
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def create_trigger_instance(
    *, session: Session, trigger_ref: str, payload: Mapping[str, Any]
) -> TriggerInstanceDB:
    """Store a pending occurrence of the trigger ``trigger_ref``."""
    instance = TriggerInstanceDB(
        id=new_id(),
        trigger=trigger_ref,
        payload=dict(payload),
        occurrence_time=utcnow(),
        status=TriggerInstanceStatus.PENDING.value,
    )
    session.add(instance)
    session.flush()
    logger.debug("Stored trigger instance %s of %s", instance.id, trigger_ref)
    return instance


def create_trigger_instances(
    *, session: Session, occurrences: Iterable[tuple[str, Mapping[str, Any], datetime]]
) -> list[TriggerInstanceDB]:
    """Store pending occurrences, each ``(trigger_ref, payload, occurrence_time)``, in one
    multi-row insert (a sensor dispatching thousands a second skips the ORM's unit of work)."""
    rows = [
        {
            "id": new_id(),
            "trigger": trigger_ref,
            "payload": dict(payload),
            "occurrence_time": occurred,
            "status": TriggerInstanceStatus.PENDING.value,
        }
        for trigger_ref, payload, occurred in occurrences
    ]
    if rows:
        session.execute(sa.insert(table_of(TriggerInstanceDB)), rows)
    return [TriggerInstanceDB(**row) for row in rows]


def get_trigger_instance(*, session: Session, instance_id: str) -> TriggerInstanceDB:
    """Return the instance with ``instance_id``; NotFoundError otherwise."""
    instance = session.get(TriggerInstanceDB, instance_id)
    if instance is None:
        raise NotFoundError(f'TriggerInstance with id "{instance_id}" not found')
    return instance


def list_trigger_instances(
    *,
    session: Session,
    offset: int,
    limit: int | None,
    trigger: str | None = None,
    status: str | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
) -> tuple[int, list[TriggerInstanceDB]]:
    """Return how many instances match and one page of them, newest first."""
    conditions: list[sa.ColumnElement[bool]] = []
    if trigger:
        conditions.append(TriggerInstanceDB.trigger == trigger)
    if status:
        conditions.append(TriggerInstanceDB.status == status)
    if after is not None:
        conditions.append(TriggerInstanceDB.occurrence_time > after)
    if before is not None:
        conditions.append(TriggerInstanceDB.occurrence_time < before)
    total = session.scalar(
        sa.select(sa.func.count()).select_from(TriggerInstanceDB).where(*conditions)
    )
    query = (
        sa.select(TriggerInstanceDB)
        .where(*conditions)
        .order_by(TriggerInstanceDB.occurrence_time.desc(), TriggerInstanceDB.id.desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return total or 0, list(session.scalars(query))


def re_emit_trigger_instance(*, session: Session, instance_id: str) -> TriggerInstanceDB:
    """Store a new pending copy of an instance; its payload names the original in ``__context``."""
    original = get_trigger_instance(session=session, instance_id=instance_id)
    payload = copy.deepcopy(original.payload or {})
    payload["__context"] = {"original_id": original.id}
    return create_trigger_instance(session=session, trigger_ref=original.trigger, payload=payload)


def announce_trigger_instances(
    publisher: Publisher, instances: Iterable[TriggerInstanceDB]
) -> None:
    """Announce committed instances to the rules engine; a broker failure is logged, not raised."""
    for instance in instances:
        try:
            publisher.event(CREATED_EVENT, {"id": instance.id, "trigger": instance.trigger})
        except (KombuError, BrokerConnectionError, ChannelError, OSError):
            logger.exception(
                "Could not announce trigger instance %s; it stays pending until picked up",
                instance.id,
            )


def announce_trigger_instance_batch(
    publisher: Publisher, instances: Sequence[TriggerInstanceDB]
) -> None:
    """Announce instances committed together with one event (the rules engine takes every
    pending instance on a doorbell): the last one's id and trigger, and how many there are."""
    if not instances:
        return
    last = instances[-1]
    try:
        publisher.event(
            CREATED_EVENT, {"id": last.id, "trigger": last.trigger, "count": len(instances)}
        )
    except (KombuError, BrokerConnectionError, ChannelError, OSError):
        logger.exception(
            "Could not announce %d trigger instances; they stay pending until picked up",
            len(instances),
        )
