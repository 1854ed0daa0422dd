"""The ``sensor_type_db`` table."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType


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
