"""Alertmanager's webhook payload (version 4), read tolerantly.

The body must be a JSON object whose ``alerts`` is a list; anything else is a
:class:`PayloadError` (HTTP 400, which Alertmanager never retries: the same body would fail
again). Unknown fields are ignored, ``notification_reason`` and ``truncatedAlerts`` are kept.

Each alert is read on its own: one that is malformed (labels missing or not strings, ``startsAt``
missing or not a timestamp, ...) is listed in :attr:`WebhookPayload.rejected` with its index and
the rest are kept. Per alert:

* ``status`` is the alert's own, not the group's; when it is missing, the alert is resolved if
  its ``endsAt`` has passed (Alertmanager's own definition), else firing;
* ``fingerprint`` missing or empty: computed from the labels the way Alertmanager does
  (:func:`poundcake.remediation.alerts.ids.label_fingerprint`);
* timestamps are RFC 3339 with up to nine fractional digits (kept to microseconds) and ``Z`` or
  an offset; Go's zero time (``0001-01-01T00:00:00Z``) as ``endsAt`` means "not set";
* text longer than its column (alert name 255, severity 64, generator URL 2048, receiver 255,
  notification reason 64) is cut.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from poundcake.exceptions import ValidationError
from poundcake.remediation.alerts.ids import alert_id, label_fingerprint
from poundcake.remediation.alerts.trigger import FIRING, RESOLVED

STATUSES = frozenset({FIRING, RESOLVED})
MAX_FINGERPRINT = 64
MAX_ALERT_NAME = 255
MAX_SEVERITY = 64
MAX_URL = 2048
MAX_RECEIVER = 255
MAX_REASON = 64

_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))"
)
_MIN_YEAR = 1000
_ZONES: dict[tuple[str, str, str], timezone] = {}


class PayloadError(ValidationError):
    """The body is not an Alertmanager webhook at all (HTTP 400)."""


class PayloadTooLargeError(ValidationError):
    """The body is larger than ``POUNDCAKE_MAX_BODY_BYTES`` (HTTP 413)."""

    http_status = 413


class TooManyAlertsError(PayloadTooLargeError):
    """The payload carries more alerts than ``POUNDCAKE_MAX_ALERTS`` (HTTP 413)."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} alerts in one request; at most {limit} are accepted")
        self.count = count
        self.limit = limit


class AlertError(ValueError):
    """One alert of the payload is malformed; the others are still read."""


@dataclass(frozen=True, slots=True)
class ParsedAlert:
    """One well-formed alert of a payload, ready to be stored as a delivery of its episode."""

    index: int
    alert_id: str
    fingerprint: str
    alertmanager_status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None

    @property
    def alert_name(self) -> str:
        """The ``alertname`` label ("" when absent), cut to its column."""
        return self.labels.get("alertname", "")[:MAX_ALERT_NAME]

    @property
    def severity(self) -> str | None:
        """The ``severity`` label, cut to its column."""
        value = self.labels.get("severity")
        return value[:MAX_SEVERITY] if value is not None else None


@dataclass(frozen=True, slots=True)
class Rejection:
    """An alert left out of a payload, by index, and why."""

    index: int
    error: str


@dataclass(frozen=True, slots=True)
class WebhookPayload:
    """What intake keeps of one webhook body."""

    version: str | None
    receiver: str | None
    status: str | None
    group_key: str | None
    notification_reason: str | None
    external_url: str | None
    truncated_alerts: int
    alerts: tuple[ParsedAlert, ...]
    rejected: tuple[Rejection, ...]


def _json_loads() -> Callable[[bytes], Any]:
    if importlib.util.find_spec("orjson") is not None:
        loads: Callable[[bytes], Any] = importlib.import_module("orjson").loads
        return loads
    return json.loads


loads_json = _json_loads()
_DECODE_ERRORS: tuple[type[Exception], ...] = (ValueError, UnicodeDecodeError, RecursionError)


def parse_webhook(body: bytes, *, max_alerts: int, now: datetime | None = None) -> WebhookPayload:
    """Read a webhook body; raise :class:`PayloadError` or :class:`TooManyAlertsError`."""
    try:
        document = loads_json(body)
    except _DECODE_ERRORS:
        raise PayloadError("the body is not JSON") from None
    return parse_document(document, max_alerts=max_alerts, now=now)


def parse_document(
    document: Any, *, max_alerts: int, now: datetime | None = None
) -> WebhookPayload:
    """Read an already decoded webhook document."""
    if not isinstance(document, dict):
        raise PayloadError("the body is not a JSON object")
    raw_alerts = document.get("alerts")
    if not isinstance(raw_alerts, list):
        raise PayloadError("alerts must be a list")
    if len(raw_alerts) > max_alerts:
        raise TooManyAlertsError(len(raw_alerts), max_alerts)
    moment = now or datetime.now(UTC)
    alerts: list[ParsedAlert] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raw_alerts):
        try:
            alerts.append(parse_alert(raw, index, now=moment))
        except AlertError as error:
            rejected.append(Rejection(index, str(error)))
    truncated = document.get("truncatedAlerts")
    return WebhookPayload(
        version=_text(document.get("version")),
        receiver=_text(document.get("receiver"), MAX_RECEIVER),
        status=_text(document.get("status")),
        group_key=_text(document.get("groupKey")),
        notification_reason=_text(document.get("notification_reason"), MAX_REASON),
        external_url=_text(document.get("externalURL")),
        truncated_alerts=truncated if type(truncated) is int and truncated > 0 else 0,
        alerts=tuple(alerts),
        rejected=tuple(rejected),
    )


def parse_alert(raw: Any, index: int, *, now: datetime) -> ParsedAlert:
    """Read one alert; raise :class:`AlertError` naming what is wrong with it."""
    if not isinstance(raw, dict):
        raise AlertError("the alert is not an object")
    labels = _string_map(raw.get("labels"), "labels", required=True)
    if not labels:
        raise AlertError("labels is empty")
    annotations = _string_map(raw.get("annotations"), "annotations", required=False)
    starts_raw = raw.get("startsAt")
    if not isinstance(starts_raw, str):
        raise AlertError("startsAt is missing")
    starts_at = parse_timestamp(starts_raw, "startsAt")
    if starts_at is None:
        raise AlertError("startsAt is not set")
    ends_raw = raw.get("endsAt")
    if ends_raw is None or ends_raw == "":
        ends_at = None
    elif isinstance(ends_raw, str):
        ends_at = parse_timestamp(ends_raw, "endsAt")
    else:
        raise AlertError("endsAt is not a timestamp")
    status = raw.get("status")
    if status is None:
        status = RESOLVED if ends_at is not None and ends_at <= now else FIRING
    elif not isinstance(status, str) or status not in STATUSES:
        raise AlertError("status must be firing or resolved")
    fingerprint = raw.get("fingerprint")
    if fingerprint is None or fingerprint == "":
        fingerprint = label_fingerprint(labels)
    elif not isinstance(fingerprint, str) or len(fingerprint) > MAX_FINGERPRINT:
        raise AlertError(f"fingerprint must be a string of at most {MAX_FINGERPRINT} characters")
    generator_url = raw.get("generatorURL")
    if generator_url is not None and not isinstance(generator_url, str):
        raise AlertError("generatorURL is not a string")
    return ParsedAlert(
        index=index,
        alert_id=alert_id(fingerprint, starts_at),
        fingerprint=fingerprint,
        alertmanager_status=status,
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url[:MAX_URL] if generator_url else None,
    )


def parse_timestamp(value: str, name: str = "timestamp") -> datetime | None:
    """Read an RFC 3339 timestamp as aware UTC; Go's zero time (year 1 or before) is None."""
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        raise AlertError(f"{name} is not an RFC 3339 timestamp")
    year, month, day, hour, minute, second, fraction, zulu, sign, zone_h, zone_m = match.groups()
    if int(year) <= 1:
        return None
    if int(year) < _MIN_YEAR:
        raise AlertError(f"{name} is out of range")
    micros = int((fraction + "00000")[:6]) if fraction else 0
    try:
        zone = UTC if zulu else _zone(sign, zone_h, zone_m)
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, zone
        )
        return moment if zone is UTC else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise AlertError(f"{name} is not a valid date and time") from None


def _zone(sign: str, hours: str, minutes: str) -> timezone:
    key = (sign, hours, minutes)
    zone = _ZONES.get(key)
    if zone is None:
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        zone = timezone(-offset if sign == "-" else offset)
        if len(_ZONES) < 256:
            _ZONES[key] = zone
    return zone


def _string_map(value: Any, name: str, *, required: bool) -> dict[str, str]:
    if value is None:
        if required:
            raise AlertError(f"{name} is missing")
        return {}
    if not isinstance(value, dict):
        raise AlertError(f"{name} must be an object")
    for key, item in value.items():
        if not isinstance(item, str):
            raise AlertError(f"{name} must map names to strings ({key!r} does not)")
    return value


def _text(value: Any, limit: int | None = None) -> str | None:
    if not isinstance(value, str):
        return None
    return value[:limit] if limit is not None else value
