"""StackStorm's ``st2common.util.date``: time-zone aware datetimes, UTC by default."""

from __future__ import annotations

import datetime

__all__ = ["add_utc_tz", "convert_to_utc", "get_datetime_utc_now", "parse"]


def get_datetime_utc_now() -> datetime.datetime:
    """Return the current time in UTC, time-zone aware."""
    return datetime.datetime.now(datetime.UTC)


def add_utc_tz(dt: datetime.datetime) -> datetime.datetime:
    """Mark a naive datetime as UTC; refuse one in another time zone."""
    if dt.tzinfo and dt.utcoffset() != datetime.timedelta(0):
        raise ValueError("datetime value has a non-UTC timezone")
    return dt.replace(tzinfo=datetime.UTC)


def convert_to_utc(dt: datetime.datetime) -> datetime.datetime:
    """Return ``dt`` in UTC; a naive datetime is taken to be UTC already."""
    if dt.tzinfo is None:
        return add_utc_tz(dt)
    return dt.astimezone(datetime.UTC)


def parse(value: str, preserve_original_tz: bool = False) -> datetime.datetime:
    """Parse an ISO 8601 date; without an offset it is UTC, and the result is in UTC unless
    ``preserve_original_tz``."""
    dt = datetime.datetime.fromisoformat(value.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    return dt if preserve_original_tz else convert_to_utc(dt)
