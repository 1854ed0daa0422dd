"""Timer schedules: first and next fire times of interval, date and cron timers, time zones,
coalescing of missed firings, and the errors invalid parameters give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from poundcake.engine.timers.schedule import build_schedule
from poundcake.exceptions import ValidationError

INTERVAL = "core.st2.IntervalTimer"
DATE = "core.st2.DateTimer"
CRON = "core.st2.CronTimer"
NOW = datetime(2024, 3, 1, 12, 0, 0, 300_000, tzinfo=UTC)  # a Friday


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def cron_times(fields: dict[str, Any], start: datetime, count: int) -> list[datetime]:
    """The first ``count`` firings of a cron timer made at ``start``, each on time."""
    schedule = build_schedule(CRON, fields)
    moment = schedule.first_fire_time(start)
    times = []
    while moment is not None and len(times) < count:
        times.append(moment)
        moment = schedule.next_fire_time(moment, moment)
    return times


# --- interval -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "delta", "first"),
    [
        ("seconds", 1, "2024-03-01T12:00:02"),
        ("seconds", 30, "2024-03-01T12:00:31"),
        ("minutes", 5, "2024-03-01T12:05:01"),
        ("hours", 2, "2024-03-01T14:00:01"),
        ("days", 1, "2024-03-02T12:00:01"),
        ("weeks", 1, "2024-03-08T12:00:01"),
    ],
)
def test_interval_first_fires_one_delta_later_on_a_whole_second(
    unit: str, delta: int, first: str
) -> None:
    schedule = build_schedule(INTERVAL, {"unit": unit, "delta": delta})

    assert schedule.first_fire_time(NOW) == at(first)


def test_interval_continues_every_delta_when_fired_late_within_the_interval() -> None:
    schedule = build_schedule(INTERVAL, {"unit": "seconds", "delta": 10})
    scheduled = at("2024-03-01T12:00:10")

    assert schedule.next_fire_time(scheduled, scheduled) == at("2024-03-01T12:00:20")
    late = scheduled + timedelta(seconds=9.9)
    assert schedule.next_fire_time(scheduled, late) == at("2024-03-01T12:00:20")


def test_interval_missed_firings_coalesce_and_continue_on_the_grid_after_now() -> None:
    schedule = build_schedule(INTERVAL, {"unit": "seconds", "delta": 10})
    scheduled = at("2024-03-01T12:00:10")

    after_downtime = schedule.next_fire_time(scheduled, scheduled + timedelta(seconds=35))
    assert after_downtime == at("2024-03-01T12:00:50")
    on_a_missed_moment = schedule.next_fire_time(scheduled, at("2024-03-01T12:00:40"))
    assert on_a_missed_moment == at("2024-03-01T12:00:50")


def test_interval_days_keep_absolute_time_across_a_daylight_saving_change() -> None:
    schedule = build_schedule(INTERVAL, {"unit": "days", "delta": 1, "timezone": "Europe/Paris"})
    before_change = at("2024-03-30T12:00:00")

    assert schedule.next_fire_time(before_change, before_change) == at("2024-03-31T12:00:00")


def test_interval_results_are_utc() -> None:
    schedule = build_schedule(INTERVAL, {"unit": "seconds", "delta": 5, "timezone": "Asia/Tokyo"})

    first = schedule.first_fire_time(NOW)

    assert first is not None and first.utcoffset() == timedelta(0)
    assert first == at("2024-03-01T12:00:06")


# --- date -----------------------------------------------------------------------------------


def test_date_fires_once_at_the_date_in_its_time_zone() -> None:
    schedule = build_schedule(DATE, {"date": "2024-03-01 14:30:00", "timezone": "Europe/Paris"})

    first = schedule.first_fire_time(NOW)

    assert first == at("2024-03-01T13:30:00")
    assert schedule.next_fire_time(first, first) is None


def test_date_uses_the_default_time_zone_when_it_names_none() -> None:
    schedule = build_schedule(
        DATE, {"date": "2024-03-01 09:00:00"}, default_timezone="America/New_York"
    )

    assert schedule.first_fire_time(NOW) == at("2024-03-01T14:00:00")


def test_date_with_an_explicit_offset_ignores_the_time_zone() -> None:
    schedule = build_schedule(DATE, {"date": "2024-03-01T15:00:00+02:00", "timezone": "Asia/Tokyo"})

    assert schedule.first_fire_time(NOW) == at("2024-03-01T13:00:00")


def test_date_a_little_in_the_past_still_fires_at_once() -> None:
    schedule = build_schedule(DATE, {"date": "2024-03-01 11:59:30"})

    assert schedule.first_fire_time(NOW) == at("2024-03-01T11:59:30")


def test_date_more_than_a_minute_in_the_past_never_fires() -> None:
    schedule = build_schedule(DATE, {"date": "2024-03-01 11:58:59"})

    assert schedule.first_fire_time(NOW) is None


# --- cron -----------------------------------------------------------------------------------


def test_cron_every_other_second_fires_on_even_seconds() -> None:
    times = cron_times({"second": "*/2"}, NOW, 4)

    assert times == [at(f"2024-03-01T12:00:{second:02}") for second in (2, 4, 6, 8)]


def test_cron_a_match_at_the_present_second_fires_now_but_not_twice() -> None:
    schedule = build_schedule(CRON, {"second": "*/2"})
    exactly = at("2024-03-01T12:00:02")

    assert schedule.first_fire_time(exactly) == exactly
    assert schedule.next_fire_time(exactly, exactly) == at("2024-03-01T12:00:04")


def test_cron_weekday_names_and_ranges() -> None:
    times = cron_times({"day_of_week": "mon-wed", "hour": 9, "minute": 0}, NOW, 4)

    assert times == [
        at("2024-03-04T09:00:00"),
        at("2024-03-05T09:00:00"),
        at("2024-03-06T09:00:00"),
        at("2024-03-11T09:00:00"),
    ]


def test_cron_weekday_lists_and_numbers_count_from_monday() -> None:
    by_name = cron_times({"day_of_week": "sat,sun", "hour": 6}, NOW, 3)
    by_number = cron_times({"day_of_week": "5,6", "hour": 6}, NOW, 3)

    assert (
        by_name
        == by_number
        == [
            at("2024-03-02T06:00:00"),
            at("2024-03-03T06:00:00"),
            at("2024-03-09T06:00:00"),
        ]
    )


def test_cron_steps_within_a_range() -> None:
    times = cron_times({"minute": "10-30/10"}, NOW, 4)

    assert times == [
        at("2024-03-01T12:10:00"),
        at("2024-03-01T12:20:00"),
        at("2024-03-01T12:30:00"),
        at("2024-03-01T13:10:00"),
    ]


def test_cron_lower_fields_default_to_their_minimum() -> None:
    times = cron_times({"month": "jun", "day": 15}, NOW, 2)

    assert times == [at("2024-06-15T00:00:00"), at("2025-06-15T00:00:00")]


def test_cron_last_day_of_month_and_integer_fields() -> None:
    times = cron_times({"day": "last", "hour": 23, "minute": 59, "second": 0}, NOW, 2)

    assert times == [at("2024-03-31T23:59:00"), at("2024-04-30T23:59:00")]


def test_cron_matches_the_wall_clock_of_its_time_zone() -> None:
    schedule = build_schedule(CRON, {"hour": 9, "minute": 0, "timezone": "America/New_York"})

    assert schedule.first_fire_time(NOW) == at("2024-03-01T14:00:00")
    after_dst = at("2024-03-11T13:00:00")
    assert schedule.next_fire_time(after_dst, after_dst) == at("2024-03-12T13:00:00")


def test_cron_uses_the_default_time_zone_when_it_names_none() -> None:
    schedule = build_schedule(CRON, {"hour": 9, "minute": 0}, default_timezone="Asia/Kolkata")

    assert schedule.first_fire_time(NOW) == at("2024-03-02T03:30:00")


def test_cron_missed_firings_coalesce_into_the_next_match_after_now() -> None:
    schedule = build_schedule(CRON, {"minute": "*/15"})
    scheduled = at("2024-03-01T12:15:00")

    assert schedule.next_fire_time(scheduled, at("2024-03-01T13:07:00")) == at(
        "2024-03-01T13:15:00"
    )


def test_cron_that_matches_no_date_never_fires() -> None:
    assert build_schedule(CRON, {"year": 2000}).first_fire_time(NOW) is None
    assert build_schedule(CRON, {"month": 2, "day": 30}).first_fire_time(NOW) is None


# --- invalid parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger_type", "parameters", "message"),
    [
        (CRON, {"hour": 25}, "cron timer: hour 25: .*higher than the maximum value \\(23\\)"),
        (CRON, {"second": "*/0"}, "cron timer: second '\\*/0': Increment must be higher than 0"),
        (CRON, {"day_of_week": "funday"}, 'day_of_week .*Invalid weekday name "funday"'),
        (CRON, {"month": "5-2"}, "month '5-2': .*must not be higher than the maximum"),
        (CRON, {"minute": True}, "cron timer: minute must be a string or an integer"),
        (CRON, {"hours": 1}, "cron timer: unknown parameters hours"),
        (CRON, {"hour": 1, "timezone": "Mars/Olympus"}, 'unknown time zone "Mars/Olympus"'),
        (INTERVAL, {"unit": "fortnights", "delta": 1}, "unit must be one of weeks, days"),
        (INTERVAL, {"unit": "seconds"}, "delta must be a whole number of 1 or more"),
        (INTERVAL, {"unit": "seconds", "delta": 0}, "delta must be a whole number"),
        (INTERVAL, {"unit": "seconds", "delta": "5"}, "delta must be a whole number"),
        (INTERVAL, {"unit": "weeks", "delta": 10**12}, "is too long"),
        (DATE, {}, "date timer: date is required"),
        (DATE, {"date": "tomorrow"}, 'date "tomorrow" is not a date and time'),
        (DATE, {"date": "2024-02-30 10:00:00"}, 'date "2024-02-30 10:00:00" is not a date'),
        ("core.st2.webhook", {"url": "x"}, "core.st2.webhook is not a timer trigger type"),
    ],
)
def test_invalid_parameters_say_what_is_wrong(
    trigger_type: str, parameters: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        build_schedule(trigger_type, parameters)


def test_an_unknown_default_time_zone_is_an_error_for_timers_that_name_none() -> None:
    with pytest.raises(ValidationError, match='unknown time zone "Nowhere/Land"'):
        build_schedule(CRON, {"second": 0}, default_timezone="Nowhere/Land")

    named = build_schedule(CRON, {"second": 0, "timezone": "UTC"}, default_timezone="Nowhere/Land")
    assert named.first_fire_time(NOW) == at("2024-03-01T12:01:00")
