"""The ``runner_type_db`` table."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType


class RunnerTypeDB(Base):
    """A runner plugin and the parameters every action using it accepts."""

    __tablename__ = "runner_type_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    runner_package: Mapped[str | None] = mapped_column(sa.String(255))
    runner_module: Mapped[str | None] = mapped_column(sa.String(255))
    runner_parameters: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    output_key: Mapped[str | None] = mapped_column(sa.String(255))
    output_schema: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    query_module: Mapped[str | None] = mapped_column(sa.String(255))
