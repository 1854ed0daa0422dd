"""Alertmanager webhook notifications (version 4) for tests and benchmarks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def notification(
    labels: dict[str, str], *, fingerprint: str, summary: str = "test alert"
) -> dict[str, Any]:
    """A notification carrying one firing alert with ``labels``, as Alertmanager sends it."""
    name = labels.get("alertname", "")
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "poundcake",
        "groupLabels": {"alertname": name},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": summary},
                "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": fingerprint,
            }
        ],
    }
