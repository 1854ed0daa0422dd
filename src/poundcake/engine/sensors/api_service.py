"""Sensor types as the API reads and changes them: lists, one by ref or id, enable and disable.

Only ``enabled`` may change through the API, as in StackStorm; a document that changes another
field is refused naming it (the status fields are read-only and never compared). The sensor
containers notice the change on their next round: a disabled sensor stops, an enabled one
starts, without restarting anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.queries import counted_page, find_by_ref_or_id
from poundcake.db.types import utcnow
from poundcake.engine.sensors.documents import STATUS_FIELDS, sensor_type_document
from poundcake.engine.sensors.models import SensorLeaseDB, SensorTypeDB
from poundcake.engine.sensors.service import sensor_leases
from poundcake.engine.triggers.service import SYSTEM_PACK
from poundcake.exceptions import ValidationError


def find_sensor_type(*, session: Session, ref_or_id: str) -> SensorTypeDB:
    """Return a sensor type by ref, else by id; NotFoundError otherwise."""
    return find_by_ref_or_id(session, SensorTypeDB, ref_or_id)


def list_sensor_types(
    *,
    session: Session,
    offset: int,
    limit: int | None,
    pack: str | None = None,
    name: str | None = None,
    enabled: bool | None = None,
    trigger: str | None = None,
    ids: list[str] | None = None,
) -> tuple[int, list[SensorTypeDB]]:
    """Return how many sensor types match and one page of them, by pack and name."""
    conditions: list[sa.ColumnElement[bool]] = []
    if pack:
        conditions.append(SensorTypeDB.pack == pack)
    if name:
        conditions.append(SensorTypeDB.name == name)
    if enabled is not None:
        conditions.append(SensorTypeDB.enabled.is_(enabled))
    if ids:
        conditions.append(SensorTypeDB.id.in_(ids))
    order = (SensorTypeDB.pack, SensorTypeDB.name)
    if not trigger:
        return counted_page(session, SensorTypeDB, conditions, order, offset, limit)
    # trigger_types is a JSON list: filter in Python, then page.
    rows = [
        row
        for row in session.scalars(sa.select(SensorTypeDB).where(*conditions).order_by(*order))
        if trigger in (row.trigger_types or [])
    ]
    end = None if limit is None else offset + limit
    return len(rows), rows[offset:end]


def sensor_type_documents(*, session: Session, sensors: list[SensorTypeDB]) -> list[dict[str, Any]]:
    """The API documents of ``sensors``, with their status."""
    leases: dict[str, SensorLeaseDB] = sensor_leases(
        session=session, refs=[sensor.ref for sensor in sensors]
    )
    now = utcnow()
    return [sensor_type_document(sensor, leases.get(sensor.ref), now) for sensor in sensors]


def update_sensor_type(
    *, session: Session, sensor: SensorTypeDB, document: Mapping[str, Any]
) -> SensorTypeDB:
    """Apply a PUT: only ``enabled`` may change; a system pack's sensors cannot change."""
    if sensor.pack == SYSTEM_PACK:
        raise ValidationError(
            f'Resource belongs to the "{SYSTEM_PACK}" system pack and can\'t be modified.'
        )
    current = sensor_type_document(sensor, None, utcnow())
    unknown = sorted(set(document) - set(current) - set(STATUS_FIELDS))
    changed = sorted(
        name
        for name, value in document.items()
        if name in current and name not in (*STATUS_FIELDS, "enabled") and current[name] != value
    )
    if unknown or changed:
        raise ValidationError(
            "Only enabled can be changed on a sensor type (change the pack's sensor file and "
            f"register it for the rest): {', '.join([*unknown, *changed])}"
        )
    enabled = document.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ValidationError(f"enabled: must be true or false (got {enabled!r})")
    sensor.enabled = enabled
    session.flush()
    return sensor
