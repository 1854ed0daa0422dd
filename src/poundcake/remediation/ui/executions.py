"""Executions for the UI: ``st2 execution list``'s filters, detail, output, re-run, cancel,
pause and resume.

Lists and output are read from the engine's tables with the engine's own filters; one execution,
re-runs, cancels, pauses and resumes go through the engine's API with PoundCake's key (server
side), so secret parameters are masked exactly as the engine's API masks them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.public import (
    PAUSABLE_RUNNERS,
    WORKFLOW_RUNNER_TYPES,
    ExecutionDB,
    ExecutionFilters,
    ExecutionOutputDB,
    LiveActionDB,
    filter_conditions,
    isoformat,
    parse_timestamp,
)
from poundcake.exceptions import ConflictError, NotFoundError, ValidationError
from poundcake.remediation.engine_api import EngineClient, EngineError

logger = logging.getLogger(__name__)

E = ExecutionDB
MAX_PAGE = 500
MAX_OUTPUT_CHUNKS = 5000


@dataclass(frozen=True)
class ExecutionQuery:
    """What ``GET /ui/api/executions`` asks for (strings as the query string gives them)."""

    action: str | None = None
    status: str | None = None
    user: str | None = None
    trigger_instance: str | None = None
    parent: str | None = None
    rule: str | None = None
    timestamp_gt: str | None = None
    timestamp_lt: str | None = None
    task_execution: str | None = None
    limit: int = 50
    offset: int = 0

    def filters(self) -> ExecutionFilters:
        """The engine's filters (timestamps parsed; a bad one is a ValidationError)."""
        return ExecutionFilters(
            action=self.action or None,
            status=self.status or None,
            user=self.user or None,
            trigger_instance=self.trigger_instance or None,
            parent=self.parent or None,
            rule=self.rule or None,
            timestamp_gt=parse_timestamp(self.timestamp_gt, "timestamp_gt")
            if self.timestamp_gt
            else None,
            timestamp_lt=parse_timestamp(self.timestamp_lt, "timestamp_lt")
            if self.timestamp_lt
            else None,
        )


def _links(context: Any) -> tuple[str | None, str | None]:
    if not isinstance(context, dict):
        return None, None
    request_id, alert_id = context.get("request_id"), context.get("alert_id")
    return (
        request_id if isinstance(request_id, str) else None,
        alert_id if isinstance(alert_id, str) else None,
    )


def _conditions(query: ExecutionQuery) -> list[sa.ColumnElement[bool]]:
    conditions = list(filter_conditions(query.filters()))
    if query.task_execution:
        # The actions an Orquesta task ran (a with-items task's items).
        conditions.append(
            sa.exists().where(
                LiveActionDB.id == E.liveaction_id,
                LiveActionDB.task_execution == query.task_execution,
            )
        )
    return conditions


def list_executions(session: Session, query: ExecutionQuery) -> dict[str, Any]:
    """One page of executions, newest first, and how many match."""
    if not 1 <= query.limit <= MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}")
    if query.offset < 0:
        raise ValidationError("offset must not be negative")
    conditions = _conditions(query)
    total = session.scalar(sa.select(sa.func.count()).select_from(E).where(*conditions))
    rows = session.execute(
        sa.select(
            E.id,
            E.action,
            E.status,
            E.start_timestamp,
            E.end_timestamp,
            E.context,
            E.parent,
            E.context_user,
        )
        .where(*conditions)
        .order_by(E.start_timestamp.desc(), E.id.desc())
        .limit(query.limit)
        .offset(query.offset)
    )
    items = []
    for row in rows:
        request_id, alert_id = _links(row.context)
        elapsed = (
            (row.end_timestamp - row.start_timestamp).total_seconds()
            if row.end_timestamp is not None
            else None
        )
        items.append(
            {
                "id": row.id,
                "action": row.action,
                "status": row.status,
                "start_timestamp": isoformat(row.start_timestamp),
                "end_timestamp": isoformat(row.end_timestamp),
                "elapsed_seconds": elapsed,
                "request_id": request_id,
                "alert_id": alert_id,
                "parent": row.parent,
                "user": row.context_user,
            }
        )
    return {"items": items, "total": int(total or 0)}


def execution_detail(engine_api: EngineClient, execution_id: str) -> dict[str, Any]:
    """One execution as the engine's API shows it (secrets masked), in the UI's shape."""
    document = engine_api.get_execution(execution_id)
    action = document.get("action") or {}
    runner = document.get("runner") or {}
    context = document.get("context") or {}
    request_id, alert_id = _links(context)
    runner_name = runner.get("name") if isinstance(runner, dict) else runner
    return {
        "id": document.get("id"),
        "action": action.get("ref") if isinstance(action, dict) else action,
        "runner": runner_name,
        "workflow": runner_name in WORKFLOW_RUNNER_TYPES,
        "pausable": runner_name in PAUSABLE_RUNNERS,
        "status": document.get("status"),
        "parameters": document.get("parameters") or {},
        "result": document.get("result"),
        "context": context,
        "start_timestamp": document.get("start_timestamp"),
        "end_timestamp": document.get("end_timestamp"),
        "children": document.get("children") or [],
        "request_id": request_id,
        "alert_id": alert_id,
        "log": document.get("log") or [],
    }


def execution_output(session: Session, execution_id: str) -> dict[str, Any]:
    """The stdout and stderr chunks of an execution, oldest first."""
    if session.get(E, execution_id) is None:
        raise NotFoundError(f'No execution with id "{execution_id}"')
    chunks = session.scalars(
        sa.select(ExecutionOutputDB)
        .where(ExecutionOutputDB.execution_id == execution_id)
        .order_by(ExecutionOutputDB.id)
        .limit(MAX_OUTPUT_CHUNKS)
    )
    return {
        "items": [
            {
                "output_type": chunk.output_type,
                "data": chunk.data,
                "timestamp": isoformat(chunk.timestamp),
            }
            for chunk in chunks
        ]
    }


def rerun_execution(engine_api: EngineClient, execution_id: str, *, user: str) -> dict[str, Any]:
    """Re-run an execution; ``{"id"}`` of the new one."""
    new_id = engine_api.rerun(execution_id).get("id")
    logger.info("UI user %s re-ran execution %s as %s", user, execution_id, new_id)
    return {"id": new_id}


def cancel_execution(engine_api: EngineClient, execution_id: str, *, user: str) -> dict[str, Any]:
    """Cancel an execution; ConflictError when the engine refuses (it has finished)."""
    document = engine_api.cancel_execution(execution_id)
    if "faultstring" in document and "status" not in document:
        raise ConflictError(str(document["faultstring"]))
    logger.info("UI user %s canceled execution %s", user, execution_id)
    return {"id": document.get("id", execution_id), "status": document.get("status")}


def change_pause(
    engine_api: EngineClient, execution_id: str, *, pause: bool, user: str
) -> dict[str, Any]:
    """Pause (``pausing``) or resume (``resuming``) a workflow; ConflictError when the engine
    refuses (its runner cannot pause, or the execution is not running, or not paused)."""
    try:
        document = engine_api.change_status(execution_id, "pausing" if pause else "resuming")
    except EngineError as error:
        if error.status_code == 400:
            raise ConflictError(error.faultstring or str(error)) from None
        raise
    logger.info("UI user %s %s execution %s", user, "paused" if pause else "resumed", execution_id)
    return {"id": document.get("id", execution_id), "status": document.get("status")}
