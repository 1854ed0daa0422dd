"""Sensor types as StackStorm API documents, with how each sensor is doing.

StackStorm's ``SensorType`` fields, plus what ``st2 sensor get`` shows of the sensor's process
here (read-only, from ``sensor_lease_db``): ``status``, ``last_error``, ``pid``, ``exit_code``,
``spawn_count``, ``node`` (the container holding it) and ``status_updated_at``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from poundcake.engine.documents import isoformat
from poundcake.engine.sensors.models import SensorLeaseDB, SensorTypeDB
from poundcake.engine.sensors.service import SensorStatus

STATUS_FIELDS = (
    "status",
    "last_error",
    "pid",
    "exit_code",
    "spawn_count",
    "node",
    "status_updated_at",
)
ACTIVE = (SensorStatus.RUNNING.value, SensorStatus.STARTING.value)


def _live_holder(lease: SensorLeaseDB, now: datetime) -> str | None:
    if lease.holder and lease.expires_at is not None and lease.expires_at > now:
        return lease.holder
    return None


def sensor_status(
    sensor: SensorTypeDB, lease: SensorLeaseDB | None, now: datetime
) -> dict[str, Any]:
    """The read-only status fields of one sensor."""
    if lease is None:
        status = SensorStatus.STOPPED.value if sensor.enabled else "disabled"
        return {
            "status": status,
            "last_error": None,
            "pid": None,
            "exit_code": None,
            "spawn_count": 0,
            "node": None,
            "status_updated_at": None,
        }
    holder = _live_holder(lease, now)
    status = lease.status
    if not sensor.enabled and status not in ACTIVE:
        status = "disabled"  # nothing runs or retries it any more
    elif holder is None and status in ACTIVE:
        status = "unknown"  # its container stopped renewing the lease
    return {
        "status": status,
        "last_error": lease.last_error,
        "pid": lease.pid if holder else None,
        "exit_code": lease.exit_code,
        "spawn_count": lease.spawn_count,
        "node": holder,
        "status_updated_at": isoformat(lease.updated_at),
    }


def sensor_type_document(
    sensor: SensorTypeDB, lease: SensorLeaseDB | None, now: datetime
) -> dict[str, Any]:
    """The SensorType API document."""
    document: dict[str, Any] = {
        "id": sensor.id,
        "uid": sensor.uid,
        "ref": sensor.ref,
        "name": sensor.name,
        "pack": sensor.pack,
        "description": sensor.description or "",
        "class_name": sensor.class_name,
        "entry_point": sensor.entry_point,
        "artifact_uri": sensor.artifact_uri or "",
        "enabled": bool(sensor.enabled),
        "trigger_types": list(sensor.trigger_types or []),
        "metadata_file": sensor.metadata_file or "",
    }
    if sensor.poll_interval is not None:
        document["poll_interval"] = sensor.poll_interval
    document.update(sensor_status(sensor, lease, now))
    return document
