"""StackStorm's ``st2common.util.isotime``: ISO 8601 text for datetimes and back."""

from __future__ import annotations

import datetime
import re
from typing import Any

from . import date as date_utils

__all__ = ["format", "parse", "validate"]

ISO8601_FORMAT = "%Y-%m-%dT%H:%M:%S"
ISO8601_FORMAT_MICROSECOND = "%Y-%m-%dT%H:%M:%S.%f"
ISO8601_UTC_REGEX = (
    r"^\d{4}\-\d{2}\-\d{2}(\s|T)\d{2}:\d{2}:\d{2}(\.\d{3,6})?(Z|\+00|\+0000|\+00:00)$"
)


def format(dt: Any, usec: bool = True, offset: bool = True) -> str:
    """Return ``dt`` (a datetime, ISO 8601 text or a Unix time) as ISO 8601 text, ending in
    its offset (``+00:00``) or, without ``offset``, its zone name (``Z`` for UTC)."""
    moment: datetime.datetime
    if isinstance(dt, str):
        moment = parse(dt)
    elif isinstance(dt, int):
        moment = datetime.datetime.fromtimestamp(dt, datetime.UTC)
    else:
        moment = dt
    text = moment.strftime(ISO8601_FORMAT_MICROSECOND if usec else ISO8601_FORMAT)
    if offset:
        zone = moment.strftime("%z")
        return text + (f"{zone[:3]}:{zone[3:]}" if zone else "+00:00")
    name = moment.tzinfo.tzname(moment) if moment.tzinfo else "UTC"
    return text + ("Z" if name == "UTC" else str(name))


def validate(value: Any, raise_exception: bool = True) -> bool:
    """Whether ``value`` is a datetime or UTC ISO 8601 text; raise ValueError if not, unless
    told otherwise."""
    if isinstance(value, datetime.datetime) or (
        isinstance(value, str) and re.match(ISO8601_UTC_REGEX, value)
    ):
        return True
    if raise_exception:
        raise ValueError("Datetime value does not match expected format.")
    return False


def parse(
    value: str, preserve_original_tz: bool = False, validate_value: bool = True
) -> datetime.datetime:
    """Parse UTC ISO 8601 text into a time-zone aware datetime."""
    if validate_value:
        validate(value, raise_exception=True)
    return date_utils.parse(value, preserve_original_tz=preserve_original_tz)
