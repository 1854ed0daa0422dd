"""The ``action_alias_db`` table."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType


class ActionAliasDB(Base):
    """An action alias from a pack's ``aliases/`` or ``POST /v1/actionalias``."""

    __tablename__ = "action_alias_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(255))
    ref: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255), index=True)
    pack: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    action_ref: Mapped[str] = mapped_column(sa.String(255))
    formats: Mapped[list[Any]] = mapped_column(JSONType(), default=list)
    ack: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    immutable_parameters: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    metadata_file: Mapped[str | None] = mapped_column(sa.String(1024))
