"""The ``poundcake_st2_execution_extensions`` table: which alert and request an execution served.

The link to ``execution_db`` is ``ON DELETE SET NULL``: when engine retention removes an old
execution, the audit record (request, alert, step, expected result, whether it matched) stays.
Deleting an alert deletes its execution links (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_SCHEMA, MYSQL_TABLE_OPTIONS, Base
from poundcake.db.types import IdType, JSONType, UTCDateTime


class ExecutionExtension(Base):
    """One step of one remediation: the engine execution and what it was expected to return."""

    __tablename__ = "poundcake_st2_execution_extensions"
    __table_args__ = MYSQL_TABLE_OPTIONS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    st2_execution_id: Mapped[str | None] = mapped_column(
        IdType(),
        sa.ForeignKey(f"{ENGINE_SCHEMA}.execution_db.id", ondelete="SET NULL"),
        unique=True,
    )
    request_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    alert_id: Mapped[str | None] = mapped_column(
        IdType(), sa.ForeignKey("poundcake_alerts.id", ondelete="CASCADE"), index=True
    )
    cab_name: Mapped[str | None] = mapped_column(sa.String(255))
    step_order: Mapped[int] = mapped_column(sa.Integer, default=0)
    action_ref: Mapped[str | None] = mapped_column(sa.String(255))
    expected_result: Mapped[Any] = mapped_column(JSONType(), nullable=True)
    result_matched: Mapped[bool | None] = mapped_column(sa.Boolean)
    status: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
