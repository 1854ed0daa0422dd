"""Timer schedules in the database: kept in step with the timer triggers, and fired.

``timer_schedule_db`` has one row per timer trigger (a ``trigger_db`` row of a timer type),
made by whichever timers process sees the trigger first: the unique ``trigger_ref`` lets only
one insert win. A firing is a compare-and-set of ``next_fire_at`` from the value read to the
following one, in the transaction that stores the trigger instance, so however many processes
run, each scheduled moment fires once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.documents import isoformat
from poundcake.engine.timers.models import TimerScheduleDB
from poundcake.engine.timers.schedule import TIMER_TRIGGER_TYPES
from poundcake.engine.triggers.instances import create_trigger_instance
from poundcake.engine.triggers.models import TriggerDB, TriggerInstanceDB
from poundcake.engine.triggers.service import find_trigger_by_ref_or_id
from poundcake.exceptions import NotFoundError, ValidationError
from poundcake.ids import new_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimerTrigger:
    """A timer trigger: its ref, type and schedule parameters."""

    ref: str
    type: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class DueTimer:
    """A schedule whose ``next_fire_at`` (``scheduled``) has come."""

    schedule_id: str
    trigger: TimerTrigger
    scheduled: datetime


def _is_timer() -> sa.ColumnElement[bool]:
    return TriggerDB.type.in_(TIMER_TRIGGER_TYPES)


def _trigger_exists() -> sa.Exists:
    return sa.exists().where(TriggerDB.ref == TimerScheduleDB.trigger_ref, _is_timer())


def unscheduled_timer_triggers(*, session: Session) -> list[TimerTrigger]:
    """Return the timer triggers that have no schedule yet, by ref."""
    rows = session.execute(
        sa.select(TriggerDB.ref, TriggerDB.type, TriggerDB.parameters)
        .where(
            _is_timer(),
            ~sa.exists().where(TimerScheduleDB.trigger_ref == TriggerDB.ref),
        )
        .order_by(TriggerDB.ref)
    )
    return [TimerTrigger(ref, type_, dict(parameters or {})) for ref, type_, parameters in rows]


def add_schedule(
    *, session: Session, trigger: TimerTrigger, next_fire_at: datetime | None
) -> TimerScheduleDB:
    """Store a timer's schedule; IntegrityError if another process stored it first."""
    schedule = TimerScheduleDB(
        id=new_id(),
        trigger_ref=trigger.ref,
        trigger_type=trigger.type,
        next_fire_at=next_fire_at,
        last_fired_at=None,
        fire_count=0,
    )
    session.add(schedule)
    session.flush()
    return schedule


def remove_orphaned_schedules(*, session: Session) -> list[str]:
    """Delete the schedules whose timer trigger is gone; return their trigger refs."""
    refs = list(session.scalars(sa.select(TimerScheduleDB.trigger_ref).where(~_trigger_exists())))
    if refs:
        session.execute(
            sa.delete(TimerScheduleDB).where(
                TimerScheduleDB.trigger_ref.in_(refs), ~_trigger_exists()
            )
        )
    return refs


def due_timers(*, session: Session, now: datetime, limit: int) -> list[DueTimer]:
    """Return up to ``limit`` schedules due at ``now``, longest overdue first."""
    rows = session.execute(
        sa.select(
            TimerScheduleDB.id,
            TimerScheduleDB.next_fire_at,
            TriggerDB.ref,
            TriggerDB.type,
            TriggerDB.parameters,
        )
        .join(TriggerDB, TriggerDB.ref == TimerScheduleDB.trigger_ref)
        .where(TimerScheduleDB.next_fire_at <= now, _is_timer())
        .order_by(TimerScheduleDB.next_fire_at, TimerScheduleDB.id)
        .limit(limit)
    )
    return [
        DueTimer(schedule_id, TimerTrigger(ref, type_, dict(parameters or {})), scheduled)
        for schedule_id, scheduled, ref, type_, parameters in rows
        if scheduled is not None
    ]


def earliest_fire_time(*, session: Session) -> datetime | None:
    """Return the soonest ``next_fire_at`` of any schedule."""
    return session.scalar(sa.select(sa.func.min(TimerScheduleDB.next_fire_at)))


def timer_payload(due: DueTimer) -> dict[str, Any]:
    """The trigger instance payload of a firing: its scheduled time and the schedule."""
    return {"executed_at": isoformat(due.scheduled), "schedule": due.trigger.parameters}


def claim_firing(
    *, session: Session, due: DueTimer, next_fire_at: datetime | None, now: datetime
) -> bool:
    """Move a due schedule on to ``next_fire_at`` if no one else did; tell whether we did."""
    result = session.execute(
        sa.update(TimerScheduleDB)
        .where(
            TimerScheduleDB.id == due.schedule_id,
            TimerScheduleDB.next_fire_at == due.scheduled,
        )
        .values(
            next_fire_at=next_fire_at,
            last_fired_at=now,
            fire_count=TimerScheduleDB.fire_count + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return cast("sa.CursorResult[Any]", result).rowcount == 1


def fire_timer(
    *, session: Session, due: DueTimer, next_fire_at: datetime | None, now: datetime
) -> TriggerInstanceDB | None:
    """Fire a due timer: claim it, then store its trigger instance; None if already fired."""
    if not claim_firing(session=session, due=due, next_fire_at=next_fire_at, now=now):
        return None
    return create_trigger_instance(
        session=session, trigger_ref=due.trigger.ref, payload=timer_payload(due)
    )


def list_timers(*, session: Session, timer_type: str | None = None) -> list[TriggerDB]:
    """Return the timer triggers, of one timer type if asked, by type and ref."""
    if timer_type is not None and timer_type not in TIMER_TRIGGER_TYPES:
        raise ValidationError(
            f"Timer type {timer_type} not in supported types - {', '.join(TIMER_TRIGGER_TYPES)}."
        )
    types = [timer_type] if timer_type else list(TIMER_TRIGGER_TYPES)
    query = (
        sa.select(TriggerDB)
        .where(TriggerDB.type.in_(types))
        .order_by(TriggerDB.type, TriggerDB.ref)
    )
    return list(session.scalars(query))


def get_timer(*, session: Session, ref_or_id: str) -> TriggerDB:
    """Return a timer trigger by ref, else by id; NotFoundError otherwise."""
    trigger = find_trigger_by_ref_or_id(session=session, ref_or_id=ref_or_id)
    if trigger.type not in TIMER_TRIGGER_TYPES:
        raise NotFoundError(f'Timer with a reference or id "{ref_or_id}" not found')
    return trigger
