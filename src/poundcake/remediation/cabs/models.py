"""The ``poundcake_st2_action_extensions`` and ``poundcake_st2_rule_extensions`` tables.

A CAB is an engine rule plus its rule extension; each step's action may carry an action
extension. Deleting the engine row deletes its extension (``ON DELETE CASCADE``): an extension
describes an engine object and means nothing without it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_SCHEMA, MYSQL_TABLE_OPTIONS, Base
from poundcake.db.types import IdType, JSONType, UTCDateTime


class ActionExtension(Base):
    """What PoundCake knows about an engine action it uses as a remediation step."""

    __tablename__ = "poundcake_st2_action_extensions"
    __table_args__ = MYSQL_TABLE_OPTIONS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    st2_action_id: Mapped[str] = mapped_column(
        IdType(), sa.ForeignKey(f"{ENGINE_SCHEMA}.action_db.id", ondelete="CASCADE"), unique=True
    )
    action_type: Mapped[str] = mapped_column(sa.String(64))
    expected_result_schema: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    parameter_templates: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    timeout_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RuleExtension(Base):
    """The CAB behind an engine rule: its name, match and failure policy."""

    __tablename__ = "poundcake_st2_rule_extensions"
    __table_args__ = MYSQL_TABLE_OPTIONS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    st2_rule_id: Mapped[str] = mapped_column(
        IdType(), sa.ForeignKey(f"{ENGINE_SCHEMA}.rule_db.id", ondelete="CASCADE"), unique=True
    )
    cab_name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    alert_name_pattern: Mapped[str] = mapped_column(sa.String(1024))
    severity_filter: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    stop_on_first_failure: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType(), default=list)
    # Run safety (issue 21): RunSafety.document() of the CAB.
    run_safety: Mapped[dict[str, Any] | None] = mapped_column(JSONType(), default=dict)
    # The CAB's guard fields (cabs/guard_fields.py, CabGuards.document()).
    guards: Mapped[dict[str, Any] | None] = mapped_column(JSONType(), nullable=True)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
