"""The ``action_db`` table."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType


class ActionDB(Base):
    """An action definition: runner, entry point and parameter schema."""

    __tablename__ = "action_db"
    __table_args__ = (
        sa.UniqueConstraint("pack", "name"),
        ENGINE_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(255))
    ref: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    pack: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    entry_point: Mapped[str] = mapped_column(sa.String(1024), default="")
    runner_type: Mapped[str] = mapped_column(sa.String(255))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    output_schema: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    tags: Mapped[list[dict[str, Any]]] = mapped_column(JSONType(), default=list)
    notify: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    metadata_file: Mapped[str | None] = mapped_column(sa.String(1024))
