"""The tables of Orquesta workflows: ``workflow_execution_db``, ``task_execution_db`` (StackStorm's
names and fields), and two of ours that keep per-transition work small.

* ``workflow_execution_db``: one per workflow run, linked to its action execution; the parsed
  definition, the input, the runtime context, the conductor's state, status, output and errors.
* ``task_execution_db``: one per task attempt, with its status and result (a with-items task's
  result is StackStorm's ``{"items": [{"status", "result"}, ...]}``, filled in when it completes).
* ``workflow_context_db``: the workflow's context entries, append-only, so a large input is
  written once and never again.
* ``workflow_action_db``: one per action a task runs (per item for with-items tasks, rendered
  when the task starts), with the status the conductor last took from its execution; the
  workflow engine finds what changed by comparing it with the execution's status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType, MediumText, UTCDateTime


class WorkflowExecutionDB(Base):
    """One run of an Orquesta workflow."""

    __tablename__ = "workflow_execution_db"
    __table_args__ = (sa.Index(None, "status"), ENGINE_TABLE_ARGS)

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    action_execution: Mapped[str] = mapped_column(IdType(), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    input: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    state: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    status: Mapped[str] = mapped_column(sa.String(32))
    output: Mapped[Any] = mapped_column(JSONType(), nullable=True)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType(), default=list)
    sealed: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    start_timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    end_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # StackStorm's notify instruction: {"config": the workflow's notify, "tasks": [names]}.
    notify: Mapped[dict[str, Any] | None] = mapped_column(JSONType(), nullable=True)


class TaskExecutionDB(Base):
    """One attempt of one task of a workflow."""

    __tablename__ = "task_execution_db"
    __table_args__ = (
        sa.Index(None, "workflow_execution", "task_id", "task_route"),
        ENGINE_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    workflow_execution: Mapped[str] = mapped_column(IdType())
    task_name: Mapped[str] = mapped_column(sa.String(255))
    task_id: Mapped[str] = mapped_column(sa.String(255))
    task_route: Mapped[int] = mapped_column(sa.Integer)
    task_spec: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    delay: Mapped[int | None] = mapped_column(sa.Integer)
    itemized: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    items_count: Mapped[int | None] = mapped_column(sa.Integer)
    items_concurrency: Mapped[int | None] = mapped_column(sa.Integer)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType(), default=dict)
    status: Mapped[str] = mapped_column(sa.String(32))
    result: Mapped[Any] = mapped_column(JSONType(), nullable=True)
    start_timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    end_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WorkflowContextDB(Base):
    """One context entry of a workflow (``data`` is JSON, or ciphertext when ``sealed``)."""

    __tablename__ = "workflow_context_db"
    __table_args__ = (ENGINE_TABLE_ARGS,)

    workflow_execution: Mapped[str] = mapped_column(IdType(), primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    data: Mapped[str] = mapped_column(MediumText())


class WorkflowActionDB(Base):
    """One action execution a task of a workflow runs (or, for an item, will run)."""

    __tablename__ = "workflow_action_db"
    __table_args__ = (
        sa.Index(None, "workflow_execution", "status"),
        sa.Index(None, "task_execution", "item_id"),
        ENGINE_TABLE_ARGS,
    )

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    workflow_execution: Mapped[str] = mapped_column(IdType())
    task_execution: Mapped[str] = mapped_column(IdType())
    item_id: Mapped[int | None] = mapped_column(sa.Integer)
    action: Mapped[str | None] = mapped_column(sa.String(1024))
    input: Mapped[Any] = mapped_column(JSONType(), nullable=True)
    action_execution: Mapped[str | None] = mapped_column(IdType(), unique=True)
    status: Mapped[str] = mapped_column(sa.String(32))
