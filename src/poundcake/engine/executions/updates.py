"""Status changes asked for over the API (``PUT /v1/executions/{id}``), as StackStorm makes them.

``canceling``/``canceled`` request a cancel; ``pausing``/``paused`` and ``resuming`` are for
workflow runners that can pause; anything else is a plain status (and result) update through
the transition table, as a workflow engine would send it. A completed execution is left alone.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.executions.models import ExecutionDB, LiveActionDB
from poundcake.engine.executions.service import (
    DEFAULT_MAX_RESULT_BYTES,
    cancel_execution,
    get_execution,
    shape_result,
    transition,
)
from poundcake.engine.executions.states import COMPLETED, ExecutionStatus
from poundcake.exceptions import ValidationError

S = ExecutionStatus
WORKFLOW_RUNNERS = frozenset({"action-chain", "orquesta"})
# The runners here that honour a pause: the workflow engines conduct ``orquesta`` workflows to
# ``paused`` once their running tasks finish.
PAUSABLE_RUNNERS: frozenset[str] = frozenset({"orquesta"})
UNSET: Any = object()
FAILED_UPDATE = "Failed updating execution."


def parse_status(value: Any) -> ExecutionStatus:
    """A status from a request body; StackStorm's schema message otherwise."""
    try:
        return ExecutionStatus(value)
    except ValueError:
        allowed = ", ".join(repr(status.value) for status in ExecutionStatus)
        raise ValidationError(f"{value!r} is not one of [{allowed}]") from None


def _locked_status(session: Session, execution: ExecutionDB) -> ExecutionStatus:
    status = session.scalar(
        sa.select(LiveActionDB.status)
        .where(LiveActionDB.id == (execution.liveaction_id or ""))
        .with_for_update()
    )
    return ExecutionStatus(status or execution.status)


def children_active(session: Session, execution: ExecutionDB) -> bool:
    """Whether any child of ``execution`` is still in flight."""
    children = list(execution.children or [])
    if not children:
        return False
    statuses = session.scalars(sa.select(ExecutionDB.status).where(ExecutionDB.id.in_(children)))
    return any(status not in COMPLETED for status in statuses)


def _move(
    session: Session,
    execution: ExecutionDB,
    current: ExecutionStatus,
    to: ExecutionStatus,
    result: Any = UNSET,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> None:
    liveaction_values: dict[str, Any] = {}
    execution_values: dict[str, Any] = {}
    if result is not UNSET:
        stored, size, truncated = shape_result(result, max_result_bytes)
        liveaction_values["result"] = stored
        execution_values.update(result=stored, result_size=size, result_truncated=truncated)
    if to == current:
        if liveaction_values:
            session.execute(
                sa.update(LiveActionDB)
                .where(LiveActionDB.id == execution.liveaction_id)
                .values(**liveaction_values)
            )
            session.execute(
                sa.update(ExecutionDB)
                .where(ExecutionDB.id == execution.id)
                .values(**execution_values)
            )
        return
    if to in COMPLETED:
        liveaction_values.update(lease_owner=None, lease_expires_at=None)
    moved = transition(
        session,
        liveaction_id=execution.liveaction_id or "",
        to=to,
        allowed_from=(current,),
        liveaction_values=liveaction_values,
        execution_values=execution_values,
    )
    if not moved:
        raise ValidationError(f"{FAILED_UPDATE} Its status changed meanwhile; try again.")


def _check_pausable(execution: ExecutionDB, verb: str) -> None:
    runner = execution.runner_type
    if runner not in WORKFLOW_RUNNERS or runner not in PAUSABLE_RUNNERS:
        raise ValidationError(
            f'{FAILED_UPDATE} Unable to {verb} liveaction "{execution.liveaction_id}" because '
            f'it is not supported by the "{runner}" runner.'
        )


def _pause(session: Session, execution: ExecutionDB, current: ExecutionStatus) -> None:
    _check_pausable(execution, "pause")
    if current in (S.PAUSING, S.PAUSED):
        return
    if current != S.RUNNING:
        raise ValidationError(
            f'{FAILED_UPDATE} Unable to pause liveaction "{execution.liveaction_id}" because '
            "it is not in a running state."
        )
    _move(session, execution, current, S.PAUSING)


def _resume(session: Session, execution: ExecutionDB, current: ExecutionStatus) -> None:
    _check_pausable(execution, "resume")
    if current in (S.RUNNING, S.RESUMING):
        return
    if current != S.PAUSED:
        raise ValidationError(
            f'{FAILED_UPDATE} Unable to resume liveaction "{execution.liveaction_id}" because '
            f'it is in "{current.value}" state and not in "paused" state.'
        )
    _move(session, execution, current, S.RESUMING)


def update_execution(
    session: Session,
    execution_id: str,
    *,
    status: Any,
    user: str,
    result: Any = UNSET,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> ExecutionDB:
    """Apply a ``PUT`` of ``{"status": ..., "result": ...}``; return the execution as it is now."""
    execution = get_execution(session, execution_id)
    wanted = parse_status(status)
    current = _locked_status(session, execution)
    if current in COMPLETED:
        raise ValidationError("Execution is already in completed state.")
    if current == S.CANCELING and wanted == S.CANCELED:
        if not children_active(session, execution):
            _move(session, execution, current, S.CANCELED, result, max_result_bytes)
    elif wanted in (S.CANCELING, S.CANCELED):
        if current != S.CANCELING:
            cancel_execution(session, execution_id, user=user)
    elif current == S.PAUSING and wanted == S.PAUSED:
        _check_pausable(execution, "pause")
        if not children_active(session, execution):
            _move(session, execution, current, S.PAUSED, result, max_result_bytes)
    elif wanted in (S.PAUSING, S.PAUSED):
        _pause(session, execution, current)
    elif wanted == S.RESUMING:
        _resume(session, execution, current)
    else:
        _move(session, execution, current, wanted, result, max_result_bytes)
    session.flush()
    session.refresh(execution)
    return execution
