"""The ``poundcake_silences`` table: every Alertmanager silence PoundCake makes for a run.

The row is written (``creating``) before the silence is asked for, so a worker that dies between
the two leaves a row the sweep finds; the silence's comment names the row, which finds the
silence in Alertmanager even when its id was never recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import MYSQL_TABLE_OPTIONS, Base
from poundcake.db.types import IdType, JSONType, UTCDateTime


class Silence(Base):
    """One silence covering one alert episode while its CAB runs."""

    __tablename__ = "poundcake_silences"
    __table_args__ = (sa.Index(None, "state", "updated_at"), MYSQL_TABLE_OPTIONS)

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    alert_id: Mapped[str] = mapped_column(
        IdType(), sa.ForeignKey("poundcake_alerts.id", ondelete="CASCADE"), unique=True
    )
    request_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    cab_name: Mapped[str] = mapped_column(sa.String(255))
    # creating -> active -> expired; failed when Alertmanager refused it.
    state: Mapped[str] = mapped_column(sa.String(16))
    silence_id: Mapped[str | None] = mapped_column(sa.String(64))
    matchers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType(), default=list)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
