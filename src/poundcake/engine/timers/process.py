"""The ``st2timersengine`` process: keep timer schedules in step with timer triggers, fire them.

Each poll removes the schedules of deleted triggers, schedules new timer triggers, then fires
the due ones, each in its own transaction (see :mod:`poundcake.engine.timers.service` for why
several processes may run at once). The loop sleeps until the next firing or the poll
interval, whichever is sooner. A timer whose parameters cannot be read is reported once and
skipped; a database outage is logged and the next poll tries again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.config_sections import TimersEngineSection
from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.engine.documents import isoformat
from poundcake.engine.runtime import EngineRuntime
from poundcake.engine.timers.schedule import TimerSchedule, build_schedule
from poundcake.engine.timers.service import (
    DueTimer,
    TimerTrigger,
    add_schedule,
    due_timers,
    earliest_fire_time,
    fire_timer,
    remove_orphaned_schedules,
    unscheduled_timer_triggers,
)
from poundcake.engine.triggers.instances import announce_trigger_instances
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimersEngineSettings:
    """Tuning of the timers loop; ``local_timezone`` applies to timers that name none."""

    poll_interval: float = 0.5
    local_timezone: str = "UTC"
    batch_size: int = 100

    @classmethod
    def from_config(cls, section: TimersEngineSection) -> TimersEngineSettings:
        """Settings from st2.conf's ``[timersengine]``."""
        return cls(poll_interval=section.poll_interval, local_timezone=section.local_timezone)


class TimersEngine:
    """One timers process; several may run against the same database."""

    def __init__(
        self, runtime: EngineRuntime, settings: TimersEngineSettings | None = None
    ) -> None:
        self.runtime = runtime
        self.settings = settings or TimersEngineSettings.from_config(runtime.config.timersengine)
        self._reported: set[str] = set()

    def schedule_for(self, trigger: TimerTrigger) -> TimerSchedule | None:
        """The trigger's schedule; None (reported once per trigger) if it cannot be read."""
        try:
            return build_schedule(
                trigger.type, trigger.parameters, default_timezone=self.settings.local_timezone
            )
        except ValidationError as error:
            if trigger.ref not in self._reported:
                self._reported.add(trigger.ref)
                logger.error(
                    "Timer %s is skipped, its parameters are invalid: %s", trigger.ref, error
                )
            return None

    def reconcile(self, now: datetime) -> None:
        """Drop the schedules of deleted timer triggers and schedule the new ones."""
        sessions = self.runtime.sessions
        for ref in in_transaction(
            sessions, lambda session: remove_orphaned_schedules(session=session)
        ):
            self._reported.discard(ref)
            logger.info("Timer %s removed: its trigger is gone", ref)
        for trigger in in_transaction(
            sessions, lambda session: unscheduled_timer_triggers(session=session)
        ):
            self.schedule_trigger(trigger, now)

    def schedule_trigger(self, trigger: TimerTrigger, now: datetime) -> None:
        """Store a new timer trigger's schedule; another process having done it is fine."""
        schedule = self.schedule_for(trigger)
        if schedule is None:
            return
        first = schedule.first_fire_time(now)

        def store(session: Session) -> None:
            add_schedule(session=session, trigger=trigger, next_fire_at=first)

        try:
            in_transaction(self.runtime.sessions, store)
        except sa.exc.IntegrityError:
            logger.debug("Timer %s was scheduled by another process", trigger.ref)
            return
        if first is None:
            logger.warning(
                "Timer %s will not fire: it has no time ahead (a date more than a minute ago, "
                "or cron fields no date matches)",
                trigger.ref,
            )
        else:
            logger.info("Timer %s scheduled, first firing at %s", trigger.ref, isoformat(first))

    def fire_due(self, now: datetime) -> int:
        """Fire the timers due at ``now``, at most ``batch_size``; return how many moved on
        (fired here or by another process)."""
        limit = self.settings.batch_size
        due = in_transaction(
            self.runtime.sessions,
            lambda session: due_timers(session=session, now=now, limit=limit),
        )
        return sum(self._fire(timer, now) for timer in due)

    def _fire(self, due: DueTimer, now: datetime) -> bool:
        schedule = self.schedule_for(due.trigger)
        if schedule is None:
            return False
        following = schedule.next_fire_time(due.scheduled, now)
        instance = in_transaction(
            self.runtime.sessions,
            lambda session: fire_timer(session=session, due=due, next_fire_at=following, now=now),
        )
        if instance is None:
            logger.debug(
                "Timer %s for %s was fired by another process",
                due.trigger.ref,
                isoformat(due.scheduled),
            )
            return True
        logger.info(
            "Timer %s fired for %s, next at %s",
            due.trigger.ref,
            isoformat(due.scheduled),
            isoformat(following) or "never",
        )
        announce_trigger_instances(self.runtime.publisher, [instance])
        return True

    def poll(self) -> float:
        """Reconcile and fire once; return how long to wait before the next poll."""
        self.reconcile(utcnow())
        now = utcnow()
        if self.fire_due(now) >= self.settings.batch_size:
            return 0.0  # a full batch moved on: more may be due
        earliest = in_transaction(
            self.runtime.sessions, lambda session: earliest_fire_time(session=session)
        )
        wait = self.settings.poll_interval
        now = utcnow()
        if earliest is not None and earliest > now:
            wait = min(wait, (earliest - now).total_seconds())
        return wait

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set."""
        logger.info("Timers engine polling every %ss", self.settings.poll_interval)
        while not stop.is_set():
            try:
                wait = self.poll()
            except Exception:
                logger.exception("A timers poll failed; the next one tries again")
                wait = self.settings.poll_interval
            stop.wait(wait)
        logger.info("Timers engine stopped")
