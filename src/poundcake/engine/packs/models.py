"""The ``pack_db`` table."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType


class PackDB(Base):
    """A registered pack, from its ``pack.yaml``."""

    __tablename__ = "pack_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(255))
    ref: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    keywords: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    version: Mapped[str | None] = mapped_column(sa.String(64))
    stackstorm_version: Mapped[str | None] = mapped_column(sa.String(64))
    python_versions: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    author: Mapped[str | None] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(255))
    contributors: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    files: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    path: Mapped[str | None] = mapped_column(sa.String(1024))
    dependencies: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    system: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)


class ConfigSchemaDB(Base):
    """A pack's ``config.schema.yaml``."""

    __tablename__ = "config_schema_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    pack: Mapped[str] = mapped_column(sa.String(255), unique=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)


class ConfigDB(Base):
    """A pack's configuration values (``configs/<pack>.yaml``)."""

    __tablename__ = "config_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    pack: Mapped[str] = mapped_column(sa.String(255), unique=True)
    values: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
