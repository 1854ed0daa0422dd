"""The ``notifier_pending_db`` table: finished executions the notifier has yet to process.

A row is written in the transaction that ends an execution with ``notify`` settings or a
post-run policy (``action.retry``); a notifier claims rows with ``SKIP LOCKED``, writes what they
call for and deletes them in one transaction, so nothing is sent twice or lost.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, UTCDateTime


class NotifierPendingDB(Base):
    """One finished live action waiting for the notifier."""

    __tablename__ = "notifier_pending_db"
    __table_args__ = ENGINE_TABLE_ARGS

    liveaction_id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
