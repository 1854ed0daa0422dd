"""The ``sensor_type_db`` and ``sensor_lease_db`` tables."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType, UTCDateTime


class SensorTypeDB(Base):
    """A sensor declared by a pack and the trigger types it emits."""

    __tablename__ = "sensor_type_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(255))
    ref: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    pack: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    class_name: Mapped[str] = mapped_column(sa.String(255))
    entry_point: Mapped[str] = mapped_column(sa.String(1024))
    artifact_uri: Mapped[str | None] = mapped_column(sa.String(1024))
    poll_interval: Mapped[int | None] = mapped_column(sa.Integer)
    trigger_types: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    metadata_file: Mapped[str | None] = mapped_column(sa.String(1024))


class SensorLeaseDB(Base):
    """Which sensor container runs a sensor, until when, and how the sensor is doing.

    One row per sensor ref. A container holds a sensor while ``expires_at`` is ahead and renews
    it; another container takes the sensor over once the lease has expired.
    """

    __tablename__ = "sensor_lease_db"
    __table_args__ = ENGINE_TABLE_ARGS

    sensor_ref: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    holder: Mapped[str | None] = mapped_column(sa.String(255))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(sa.String(32))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    pid: Mapped[int | None] = mapped_column(sa.Integer)
    exit_code: Mapped[int | None] = mapped_column(sa.Integer)
    spawn_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
