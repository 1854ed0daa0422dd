"""The ``poundcake.alert`` trigger: the one place its payload is built.

Dispatch sends it for a stored episode; the CAB match test previews it for a pasted alert. Both
must give the engine the same document, or the preview would match rules the real alert does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from poundcake.engine.public import isoformat

ALERT_TRIGGER = "poundcake.alert"
# Alertmanager's two statuses of an alert (``Alert.alertmanager_status``); an episode's lifecycle
# is its ``state``.
FIRING = "firing"
RESOLVED = "resolved"


class AlertFields(Protocol):
    """What the payload says about one alert: a stored episode or a freshly parsed alert."""

    @property
    def fingerprint(self) -> str: ...
    @property
    def alertmanager_status(self) -> str: ...
    @property
    def alert_name(self) -> str: ...
    @property
    def severity(self) -> str | None: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime | None: ...
    @property
    def generator_url(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """Who delivered the alert, and under which request and episode id."""

    request_id: str
    alert_id: str
    receiver: str | None
    group_key: str | None


def alert_payload(
    alert: AlertFields, delivery: Delivery, *, context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The trigger instance's payload; ``context`` becomes its ``__context`` when given."""
    payload: dict[str, Any] = {
        "request_id": delivery.request_id,
        "alert_id": delivery.alert_id,
        "fingerprint": alert.fingerprint,
        "status": alert.alertmanager_status,
        "alertname": alert.alert_name,
        "severity": alert.severity,
        "labels": dict(alert.labels or {}),
        "annotations": dict(alert.annotations or {}),
        "starts_at": isoformat(alert.starts_at),
        "ends_at": isoformat(alert.ends_at),
        "generator_url": alert.generator_url,
        "receiver": delivery.receiver,
        "group_key": delivery.group_key,
        "__context": dict(context) if context is not None else None,
    }
    # The trigger type's schema wants strings: absent values are left out, not sent as null.
    return {name: value for name, value in payload.items() if value is not None}
