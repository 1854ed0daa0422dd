"""Sensors in the database: which are enabled, who runs each one (leases), how each is doing.

Several sensor containers may run against one database; each sensor runs in exactly one of
them. A container holds a sensor by its row in ``sensor_lease_db``: one ``UPDATE`` takes every
sensor it wants whose lease is free, expired or already its own (compare-and-set, so two
containers never both win), and renews it. A container that stops renewing (killed, cut off)
loses its sensors when the lease expires; another container then takes them over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.packs.models import ConfigDB, ConfigSchemaDB, PackDB
from poundcake.engine.packs.schema import config_with_defaults
from poundcake.engine.sensors.models import SensorLeaseDB, SensorTypeDB
from poundcake.engine.triggers.instances import create_trigger_instance
from poundcake.engine.triggers.models import TriggerInstanceDB

logger = logging.getLogger(__name__)

SPAWN_TRIGGER = "core.st2.sensor.process_spawn"
EXIT_TRIGGER = "core.st2.sensor.process_exit"
ERROR_LIMIT = 8000


class SensorStatus(StrEnum):
    """How a sensor is doing, as ``st2 sensor get`` shows it."""

    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    FAILED = "failed"
    GIVEN_UP = "given_up"
    STOPPED = "stopped"


@dataclass(frozen=True)
class SensorToRun:
    """What a container needs to start one sensor."""

    ref: str
    pack: str
    class_name: str
    file_path: Path
    pack_path: Path | None
    poll_interval: int | None
    trigger_types: tuple[str, ...]

    @property
    def fingerprint(self) -> tuple[Any, ...]:
        """What, when it changes, means the running process must be replaced."""
        return (self.file_path, self.class_name, self.poll_interval, self.trigger_types)


def _file_path(artifact_uri: str | None, pack_path: str | None, entry_point: str) -> Path:
    if artifact_uri and artifact_uri.startswith("file://"):
        return Path(unquote(urlparse(artifact_uri).path))
    module = entry_point.rsplit(".", 1)[0].replace(".", "/")
    return Path(pack_path or ".") / f"{module}.py"


def enabled_sensors(*, session: Session) -> list[SensorToRun]:
    """Every enabled sensor of every registered pack, by ref."""
    rows = session.execute(
        sa.select(SensorTypeDB, PackDB.path)
        .outerjoin(PackDB, PackDB.ref == SensorTypeDB.pack)
        .where(SensorTypeDB.enabled.is_(True))
        .order_by(SensorTypeDB.ref)
    ).all()
    return [
        SensorToRun(
            ref=sensor.ref,
            pack=sensor.pack,
            class_name=sensor.class_name,
            file_path=_file_path(sensor.artifact_uri, pack_path, sensor.entry_point),
            pack_path=Path(pack_path) if pack_path else None,
            poll_interval=sensor.poll_interval,
            trigger_types=tuple(sensor.trigger_types or ()),
        )
        for sensor, pack_path in rows
    ]


def pack_config(*, session: Session, pack: str) -> dict[str, Any]:
    """The pack's config as its sensors see it: stored values with the schema's defaults."""
    values = session.scalar(sa.select(ConfigDB.values).where(ConfigDB.pack == pack))
    attributes = session.scalar(
        sa.select(ConfigSchemaDB.attributes).where(ConfigSchemaDB.pack == pack)
    )
    return config_with_defaults(values, attributes)


def claim_sensors(
    *, session: Session, holder: str, refs: Iterable[str], now: datetime, lease_seconds: float
) -> set[str]:
    """Take or renew the leases of ``refs`` that are free, expired or ours; return those held.

    Leases this holder has on sensors outside ``refs`` are released.
    """
    wanted = sorted(set(refs))
    if wanted:
        known = set(
            session.scalars(
                sa.select(SensorLeaseDB.sensor_ref).where(SensorLeaseDB.sensor_ref.in_(wanted))
            )
        )
        missing = [ref for ref in wanted if ref not in known]
        if missing:
            try:
                with session.begin_nested():
                    session.add_all(
                        SensorLeaseDB(
                            sensor_ref=ref,
                            status=SensorStatus.STOPPED.value,
                            spawn_count=0,
                            updated_at=now,
                        )
                        for ref in missing
                    )
            except sa.exc.IntegrityError:
                # Another container added the same rows first; theirs are as good as ours.
                logger.debug("Sensor lease rows were added by another container")
        session.execute(
            sa.update(SensorLeaseDB)
            .where(
                SensorLeaseDB.sensor_ref.in_(wanted),
                sa.or_(
                    SensorLeaseDB.holder.is_(None),
                    SensorLeaseDB.holder == holder,
                    SensorLeaseDB.expires_at.is_(None),
                    SensorLeaseDB.expires_at < now,
                ),
            )
            .values(holder=holder, expires_at=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
    release = sa.update(SensorLeaseDB).where(SensorLeaseDB.holder == holder)
    if wanted:
        release = release.where(SensorLeaseDB.sensor_ref.not_in(wanted))
    session.execute(
        release.values(holder=None, expires_at=None).execution_options(synchronize_session=False)
    )
    return set(
        session.scalars(sa.select(SensorLeaseDB.sensor_ref).where(SensorLeaseDB.holder == holder))
    )


def release_sensors(*, session: Session, holder: str) -> None:
    """Give up every lease ``holder`` has, so another container may take the sensors at once."""
    session.execute(
        sa.update(SensorLeaseDB)
        .where(SensorLeaseDB.holder == holder)
        .values(holder=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )


def record_status(
    *,
    session: Session,
    ref: str,
    status: SensorStatus,
    now: datetime,
    error: str | None = None,
    pid: int | None = None,
    exit_code: int | None = None,
    spawned: bool = False,
    keep_error: bool = False,
) -> None:
    """Write how a sensor is doing; ``keep_error`` leaves the last error as it was."""
    values: dict[str, Any] = {"status": status.value, "updated_at": now, "pid": pid}
    if exit_code is not None or status is SensorStatus.RUNNING:
        values["exit_code"] = exit_code
    if not keep_error:
        values["last_error"] = error[-ERROR_LIMIT:] if error else None
    if spawned:
        values["spawn_count"] = SensorLeaseDB.spawn_count + 1
    session.execute(
        sa.update(SensorLeaseDB)
        .where(SensorLeaseDB.sensor_ref == ref)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def sensor_leases(*, session: Session, refs: Iterable[str]) -> dict[str, SensorLeaseDB]:
    """The lease rows of ``refs`` (those that have one), by ref."""
    wanted = list(refs)
    if not wanted:
        return {}
    rows = session.scalars(sa.select(SensorLeaseDB).where(SensorLeaseDB.sensor_ref.in_(wanted)))
    return {row.sensor_ref: row for row in rows}


def process_event(
    *, session: Session, trigger_ref: str, payload: Mapping[str, Any]
) -> TriggerInstanceDB:
    """Store a ``process_spawn`` or ``process_exit`` trigger instance (StackStorm's payloads)."""
    return create_trigger_instance(session=session, trigger_ref=trigger_ref, payload=payload)
