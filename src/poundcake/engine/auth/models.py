"""The ``user_db``, ``token_db`` and ``api_key_db`` tables. No secret is stored in plaintext."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType, UTCDateTime


class UserDB(Base):
    """A user known to the engine; ``password_hash`` is set for users who log in here."""

    __tablename__ = "user_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    is_service: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    nicknames: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TokenDB(Base):
    """An authentication token; only its SHA-256 hash is stored."""

    __tablename__ = "token_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    user: Mapped[str] = mapped_column(sa.String(255), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(128), unique=True)
    expiry: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType(), default=dict)
    service: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class ApiKeyDB(Base):
    """An API key; only ``key_hash`` (StackStorm's salted SHA-512) is stored."""

    __tablename__ = "api_key_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(255))
    user: Mapped[str] = mapped_column(sa.String(255), index=True)
    key_hash: Mapped[str] = mapped_column(sa.String(128), unique=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType(), default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
