"""The ``execution_db``, ``liveaction_db`` and ``execution_output_db`` tables.

``execution_db`` is what the API and operators read: the execution with snapshots of its action,
runner, rule and trigger as they were when it was requested. ``action`` holds the action's ref so
plain SQL (the install guide's queries) reads naturally; the full action document is in
``action_snapshot``. ``liveaction_db`` is the scheduler's and runners' work item; a runner holds
a lease on each execution it runs (``lease_owner``, ``lease_expires_at``) and renews it while it
lives.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType, MediumText, UTCDateTime


class ExecutionDB(Base):
    """An action execution as the API shows it."""

    __tablename__ = "execution_db"
    __table_args__ = (
        sa.Index(None, "status", "start_timestamp"),
        sa.Index(None, "parent", "start_timestamp"),
        sa.Index(None, "parent", "status", "start_timestamp"),
        sa.Index(None, "action", "start_timestamp"),
        sa.Index(None, "context_user", "start_timestamp"),
        ENGINE_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    action: Mapped[str] = mapped_column(sa.String(255))
    action_snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    runner: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    runner_type: Mapped[str] = mapped_column(sa.String(255))
    liveaction_id: Mapped[str | None] = mapped_column(IdType(), index=True)
    liveaction: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    status: Mapped[str] = mapped_column(sa.String(32))
    start_timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    end_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime())
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    result: Mapped[Any] = mapped_column(JSONType(), nullable=True)
    result_size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    result_truncated: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    context_user: Mapped[str | None] = mapped_column(sa.String(255))
    parent: Mapped[str | None] = mapped_column(IdType())
    children: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    log: Mapped[list[dict[str, Any]]] = mapped_column(JSONType(), default=list)
    delay: Mapped[int | None] = mapped_column(sa.Integer)
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSONType(), nullable=True)
    rule_ref: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    trigger: Mapped[dict[str, Any] | None] = mapped_column(JSONType(), nullable=True)
    trigger_type: Mapped[dict[str, Any] | None] = mapped_column(JSONType(), nullable=True)
    trigger_instance: Mapped[dict[str, Any] | None] = mapped_column(JSONType(), nullable=True)
    trigger_instance_id: Mapped[str | None] = mapped_column(IdType(), index=True)
    web_url: Mapped[str | None] = mapped_column(sa.String(1024))


class LiveActionDB(Base):
    """The work item the scheduler and the action runners hand along."""

    __tablename__ = "liveaction_db"
    __table_args__ = (
        sa.Index(None, "status", "start_timestamp"),
        sa.Index(None, "status", "lease_expires_at"),
        ENGINE_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    action: Mapped[str] = mapped_column(sa.String(255))
    action_is_workflow: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    status: Mapped[str] = mapped_column(sa.String(32))
    start_timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    end_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result: Mapped[Any] = mapped_column(JSONType(), nullable=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    callback: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    runner_info: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    notify: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    delay: Mapped[int | None] = mapped_column(sa.Integer)
    workflow_execution: Mapped[str | None] = mapped_column(sa.String(255))
    task_execution: Mapped[str | None] = mapped_column(sa.String(255))
    lease_owner: Mapped[str | None] = mapped_column(sa.String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ExecutionOutputDB(Base):
    """One chunk of an execution's stdout or stderr, stored as it arrives."""

    __tablename__ = "execution_output_db"
    __table_args__ = (sa.Index(None, "execution_id", "id"), ENGINE_TABLE_ARGS)

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    execution_id: Mapped[str] = mapped_column(IdType())
    action_ref: Mapped[str] = mapped_column(sa.String(255))
    runner_ref: Mapped[str] = mapped_column(sa.String(255))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    output_type: Mapped[str] = mapped_column(sa.String(32))
    data: Mapped[str] = mapped_column(MediumText())
    delay: Mapped[int | None] = mapped_column(sa.Integer)
