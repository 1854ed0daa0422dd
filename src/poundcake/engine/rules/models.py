"""The ``rule_db`` and ``rule_enforcement_db`` tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType, UTCDateTime


class RuleDB(Base):
    """If an instance of ``trigger`` matches ``criteria``, run ``action``."""

    __tablename__ = "rule_db"
    __table_args__ = (sa.UniqueConstraint("pack", "name"), ENGINE_TABLE_ARGS)

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(255))
    ref: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    pack: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    trigger: Mapped[str] = mapped_column(sa.String(255), index=True)
    criteria: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    action: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    action_ref: Mapped[str] = mapped_column(sa.String(255), index=True)
    type: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    tags: Mapped[list[dict[str, Any]]] = mapped_column(JSONType(), default=list)
    metadata_file: Mapped[str | None] = mapped_column(sa.String(1024))


class RuleEnforcementDB(Base):
    """One evaluation of a rule that matched: the execution it started or why it failed."""

    __tablename__ = "rule_enforcement_db"
    # A rule is enforced at most once per trigger instance, whichever rules engine evaluates it.
    __table_args__ = (sa.UniqueConstraint("trigger_instance_id", "rule_ref"), ENGINE_TABLE_ARGS)

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    # Found by the unique constraint's index, whose first column it is.
    trigger_instance_id: Mapped[str] = mapped_column(IdType())
    execution_id: Mapped[str | None] = mapped_column(IdType(), index=True)
    rule: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    rule_ref: Mapped[str] = mapped_column(sa.String(255), index=True)
    enforced_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    status: Mapped[str] = mapped_column(sa.String(32))
    failure_reason: Mapped[str | None] = mapped_column(sa.Text)
