"""When a timer fires: a timer trigger's parameters read as an APScheduler trigger.

Every time is an aware UTC datetime. A schedule answers two questions: when a new timer first
fires, and, once the firing scheduled for ``scheduled`` happened at ``now``, when it fires
next. The next time is always after both, so firings missed while no timers process ran
coalesce into the one being made and the schedule continues from ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from poundcake.engine.triggers.service import (
    CRON_TIMER_TRIGGER_TYPE,
    DATE_TIMER_TRIGGER_TYPE,
    INTERVAL_TIMER_TRIGGER_TYPE,
)
from poundcake.exceptions import ValidationError

TIMER_TRIGGER_TYPES: tuple[str, ...] = (
    INTERVAL_TIMER_TRIGGER_TYPE,
    DATE_TIMER_TRIGGER_TYPE,
    CRON_TIMER_TRIGGER_TYPE,
)
INTERVAL_UNITS: tuple[str, ...] = ("weeks", "days", "hours", "minutes", "seconds")
CRON_FIELDS: tuple[str, ...] = CronTrigger.FIELD_NAMES
MISSED_DATE_GRACE = timedelta(seconds=60)
_JUST_AFTER = timedelta(microseconds=1)


class TimerSchedule(Protocol):
    """When one timer fires."""

    def first_fire_time(self, now: datetime) -> datetime | None:
        """When a timer seen for the first time at ``now`` fires first; None: never."""
        ...

    def next_fire_time(self, scheduled: datetime, now: datetime) -> datetime | None:
        """When it fires after the firing scheduled for ``scheduled``, made at ``now``."""
        ...


@dataclass(frozen=True)
class IntervalSchedule:
    """Every ``interval``, from the first whole second ``interval`` after the timer appeared."""

    interval: timedelta
    timezone: tzinfo

    def _trigger(self, start: datetime) -> IntervalTrigger:
        return IntervalTrigger(
            seconds=self.interval.total_seconds(), start_date=start, timezone=self.timezone
        )

    def first_fire_time(self, now: datetime) -> datetime | None:
        return _next(self._trigger(_ceil_second(now + self.interval)), None, now)

    def next_fire_time(self, scheduled: datetime, now: datetime) -> datetime | None:
        after = max(scheduled, now) + _JUST_AFTER
        return _next(self._trigger(scheduled), None, after)


@dataclass(frozen=True)
class DateSchedule:
    """Once, at the trigger's date; a date already more than a minute gone never fires."""

    trigger: DateTrigger

    def first_fire_time(self, now: datetime) -> datetime | None:
        run_date = _next(self.trigger, None, now)
        if run_date is None or run_date < now - MISSED_DATE_GRACE:
            return None
        return run_date

    def next_fire_time(self, scheduled: datetime, now: datetime) -> datetime | None:
        return _next(self.trigger, scheduled, now)


@dataclass(frozen=True)
class CronSchedule:
    """Whenever the wall clock in the trigger's time zone matches the cron fields."""

    trigger: CronTrigger

    def first_fire_time(self, now: datetime) -> datetime | None:
        return _next(self.trigger, None, now)

    def next_fire_time(self, scheduled: datetime, now: datetime) -> datetime | None:
        return _next(self.trigger, None, max(scheduled, now) + _JUST_AFTER)


def build_schedule(
    trigger_type: str, parameters: Mapping[str, Any], *, default_timezone: str = "UTC"
) -> TimerSchedule:
    """Read a timer trigger's parameters; ValidationError says what is wrong with them."""
    builders = {
        INTERVAL_TIMER_TRIGGER_TYPE: _interval_schedule,
        DATE_TIMER_TRIGGER_TYPE: _date_schedule,
        CRON_TIMER_TRIGGER_TYPE: _cron_schedule,
    }
    builder = builders.get(trigger_type)
    if builder is None:
        raise ValidationError(f"{trigger_type} is not a timer trigger type")
    if not isinstance(parameters, Mapping):
        raise ValidationError(f"{trigger_type}: parameters must be an object")
    timezone = parse_timezone(parameters.get("timezone") or default_timezone)
    return builder(parameters, timezone)


def parse_timezone(name: object) -> tzinfo:
    """Return the IANA time zone ``name`` (``UTC``, ``Europe/Paris``...)."""
    if not isinstance(name, str):
        raise ValidationError(f"timezone: {name!r} is not a time zone name")
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f'timezone: unknown time zone "{name}"') from None


def _check_names(kind: str, parameters: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(parameters) - {*allowed, "timezone"})
    if unknown:
        raise ValidationError(f"{kind}: unknown parameters {', '.join(unknown)}")


def _interval_schedule(parameters: Mapping[str, Any], timezone: tzinfo) -> TimerSchedule:
    _check_names("interval timer", parameters, ("unit", "delta"))
    unit, delta = parameters.get("unit"), parameters.get("delta")
    if unit not in INTERVAL_UNITS:
        raise ValidationError(f"interval timer: unit must be one of {', '.join(INTERVAL_UNITS)}")
    if not isinstance(delta, int) or isinstance(delta, bool) or delta < 1:
        raise ValidationError("interval timer: delta must be a whole number of 1 or more")
    try:
        interval = timedelta(**{str(unit): delta})
    except OverflowError:
        raise ValidationError(f"interval timer: {delta} {unit} is too long") from None
    return IntervalSchedule(interval=interval, timezone=timezone)


def _date_schedule(parameters: Mapping[str, Any], timezone: tzinfo) -> TimerSchedule:
    _check_names("date timer", parameters, ("date",))
    value = parameters.get("date")
    if not isinstance(value, str):
        raise ValidationError("date timer: date is required, like 2030-07-30 05:04:24")
    try:
        trigger = DateTrigger(run_date=value.strip(), timezone=timezone)
    except (ValueError, OverflowError):
        raise ValidationError(
            f'date timer: date "{value}" is not a date and time like 2030-07-30 05:04:24'
        ) from None
    return DateSchedule(trigger=trigger)


def _cron_schedule(parameters: Mapping[str, Any], timezone: tzinfo) -> TimerSchedule:
    _check_names("cron timer", parameters, CRON_FIELDS)
    fields: dict[str, str | int] = {}
    for name in CRON_FIELDS:
        value = parameters.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError(f"cron timer: {name} must be a string or an integer")
        try:
            CronTrigger(timezone=timezone, **{name: value})
        except ValueError as error:
            raise ValidationError(f"cron timer: {name} {value!r}: {error}") from None
        fields[name] = value
    try:
        trigger = CronTrigger(timezone=timezone, **fields)
    except ValueError as error:
        raise ValidationError(f"cron timer: {error}") from None
    return CronSchedule(trigger=trigger)


def _ceil_second(moment: datetime) -> datetime:
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def _next(
    trigger: IntervalTrigger | DateTrigger | CronTrigger, previous: datetime | None, now: datetime
) -> datetime | None:
    try:
        moment: datetime | None = trigger.get_next_fire_time(previous, now)
    except (ValueError, OverflowError, OSError):
        return None  # past the last representable date
    return None if moment is None else moment.astimezone(UTC)
