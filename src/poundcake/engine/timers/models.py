"""The ``timer_schedule_db`` table: when each timer trigger fires next.

Timer processes coordinate through it: a firing is a compare-and-set of ``next_fire_at`` from
the value a process read to the following one, in the transaction that stores the trigger
instance, so two processes never fire the same moment twice. ``next_fire_at`` is NULL once a
date timer has fired.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, UTCDateTime


class TimerScheduleDB(Base):
    """The schedule of one timer trigger (``trigger_db`` row of a timer type)."""

    __tablename__ = "timer_schedule_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    trigger_ref: Mapped[str] = mapped_column(sa.String(255), unique=True)
    trigger_type: Mapped[str] = mapped_column(sa.String(255))
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fire_count: Mapped[int] = mapped_column(sa.Integer, default=0)
