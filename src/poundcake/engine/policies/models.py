"""The ``policy_type_db`` and ``policy_db`` tables."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType


class PolicyTypeDB(Base):
    """A kind of policy (``action.concurrency``, ``action.retry``) and its parameter schema."""

    __tablename__ = "policy_type_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(255))
    ref: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    resource_type: Mapped[str] = mapped_column(sa.String(64))
    description: Mapped[str | None] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    module: Mapped[str | None] = mapped_column(sa.String(255))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)


class PolicyDB(Base):
    """A policy applied to one action (``resource_ref``)."""

    __tablename__ = "policy_db"
    __table_args__ = (sa.UniqueConstraint("pack", "name"), ENGINE_TABLE_ARGS)

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(255))
    ref: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    pack: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    resource_ref: Mapped[str] = mapped_column(sa.String(255), index=True)
    policy_type: Mapped[str] = mapped_column(sa.String(255))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    metadata_file: Mapped[str | None] = mapped_column(sa.String(1024))
