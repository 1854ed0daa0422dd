"""The ``trigger_type_db``, ``trigger_db`` and ``trigger_instance_db`` tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType, UTCDateTime


class TriggerTypeDB(Base):
    """A kind of event, with the schema of its parameters and payload."""

    __tablename__ = "trigger_type_db"
    __table_args__ = (sa.UniqueConstraint("pack", "name"), ENGINE_TABLE_ARGS)

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(255))
    ref: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    pack: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    payload_schema: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    parameters_schema: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    tags: Mapped[list[dict[str, Any]]] = mapped_column(JSONType(), default=list)
    metadata_file: Mapped[str | None] = mapped_column(sa.String(1024))


class TriggerDB(Base):
    """A trigger type with one set of parameters (a webhook URL, a timer's schedule)."""

    __tablename__ = "trigger_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(255))
    ref: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    pack: Mapped[str] = mapped_column(sa.String(255))
    type: Mapped[str] = mapped_column(sa.String(255), index=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    description: Mapped[str | None] = mapped_column(sa.Text)
    ref_count: Mapped[int] = mapped_column(sa.Integer, default=0)


class TriggerInstanceDB(Base):
    """One occurrence of a trigger, with its payload and processing status."""

    __tablename__ = "trigger_instance_db"
    __table_args__ = (
        sa.Index(None, "trigger", "occurrence_time"),
        # The rules engine takes the oldest pending instances first; the index also serves
        # every lookup by status alone.
        sa.Index(None, "status", "occurrence_time"),
        ENGINE_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    trigger: Mapped[str] = mapped_column(sa.String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    occurrence_time: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(sa.String(32))
