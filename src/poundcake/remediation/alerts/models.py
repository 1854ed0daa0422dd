"""The ``poundcake_alerts`` table: one row per alert episode (fingerprint + startsAt)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import MYSQL_TABLE_OPTIONS, Base
from poundcake.db.types import IdType, JSONType, UTCDateTime


class Alert(Base):
    """An alert episode with its labels, Alertmanager status and remediation state."""

    __tablename__ = "poundcake_alerts"
    __table_args__ = (
        sa.UniqueConstraint("fingerprint", "starts_at"),
        sa.Index(None, "state", "updated_at"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    alert_name: Mapped[str] = mapped_column(sa.String(255), index=True)
    severity: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    state: Mapped[str] = mapped_column(sa.String(32))
    labels: Mapped[dict[str, str]] = mapped_column(JSONType(), default=dict)
    annotations: Mapped[dict[str, str]] = mapped_column(JSONType(), default=dict)
    generator_url: Mapped[str | None] = mapped_column(sa.String(2048))
    request_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    last_request_id: Mapped[str] = mapped_column(sa.String(64))
    request_ids: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    delivery_count: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
