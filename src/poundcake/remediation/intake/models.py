"""The ``poundcake_api_calls`` and ``poundcake_st2_webhook_extensions`` tables."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_SCHEMA, MYSQL_TABLE_OPTIONS, Base
from poundcake.db.types import IdType, UTCDateTime


class ApiCall(Base):
    """One API request: who asked what, how it ended and how long it took. No secrets."""

    __tablename__ = "poundcake_api_calls"
    __table_args__ = MYSQL_TABLE_OPTIONS

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    request_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    method: Mapped[str] = mapped_column(sa.String(16))
    path: Mapped[str] = mapped_column(sa.String(2048))
    status_code: Mapped[int | None] = mapped_column(sa.SmallInteger)
    duration_ms: Mapped[float | None] = mapped_column(sa.Double)
    client_ip: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    body_size: Mapped[int | None] = mapped_column(sa.Integer)
    error: Mapped[str | None] = mapped_column(sa.Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class WebhookExtension(Base):
    """What PoundCake would add to an engine webhook: who sends to it and how it authenticates.

    The install guide creates this table (step 9), so it stays; no code writes a row. Alerts
    reach the engine through its built-in ``st2`` webhook, which has no ``webhook_db`` row, as in
    StackStorm; a row here would describe a webhook PoundCake does not use.
    """

    __tablename__ = "poundcake_st2_webhook_extensions"
    __table_args__ = MYSQL_TABLE_OPTIONS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    st2_webhook_id: Mapped[str] = mapped_column(
        IdType(),
        sa.ForeignKey(f"{ENGINE_SCHEMA}.webhook_db.id", ondelete="CASCADE"),
        unique=True,
    )
    source: Mapped[str] = mapped_column(sa.String(64), default="alertmanager")
    auth_mode: Mapped[str] = mapped_column(sa.String(32), default="bearer")
    description: Mapped[str | None] = mapped_column(sa.Text)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
