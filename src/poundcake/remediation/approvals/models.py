"""The ``poundcake_approvals`` table: one approval asked for one alert episode and one CAB.

The row is written (``pending``) by the guard step; the engine's inquiry that asks a person is
made afterwards and its id stored in ``inquiry_id``. An approval is answered once: ``pending``
moves to ``approved``, ``denied`` or ``expired`` by compare-and-set, never back.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import MYSQL_TABLE_OPTIONS, Base
from poundcake.db.types import IdType, UTCDateTime


class Approval(Base):
    """A person's approval of one CAB's run for one alert episode."""

    __tablename__ = "poundcake_approvals"
    __table_args__ = (
        sa.UniqueConstraint("alert_id", "cab_name"),
        sa.Index(None, "state", "expires_at"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    alert_id: Mapped[str] = mapped_column(
        IdType(), sa.ForeignKey("poundcake_alerts.id", ondelete="CASCADE")
    )
    request_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    cab_name: Mapped[str] = mapped_column(sa.String(255))
    # pending -> approved | denied | expired
    state: Mapped[str] = mapped_column(sa.String(16))
    # Why the CAB asks: "required", or the condition the alert met.
    reason: Mapped[str] = mapped_column(sa.String(255))
    # The engine's inquiry (a core.ask execution), once asked.
    inquiry_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_by: Mapped[str | None] = mapped_column(sa.String(255))
    # api | cli | ui | st2 (the engine's inquiry answered directly) | ttl
    answered_via: Mapped[str | None] = mapped_column(sa.String(16))
    comment: Mapped[str | None] = mapped_column(sa.Text)
