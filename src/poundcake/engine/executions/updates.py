"""Status changes asked for over the API (``PUT /v1/executions/{id}``), as StackStorm makes them.

``canceling``/``canceled`` request a cancel; ``pausing``/``paused`` and ``resuming`` are for
workflow runners that can pause (:mod:`poundcake.engine.executions.pausing`, whose
``PAUSABLE_RUNNERS`` names them); anything else is a plain status (and result) update through
the transition table, as a workflow engine would send it. A completed execution is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.executions.models import ExecutionDB, LiveActionDB
from poundcake.engine.executions.pausing import (
    check_pausable,
    locked_status,
    request_pause,
    request_resume,
)
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
UNSET: Any = object()
FAILED_UPDATE = "Failed updating execution."


def parse_status(value: Any) -> ExecutionStatus:
    """A status from a request body; StackStorm's schema message otherwise."""
    try:
        return ExecutionStatus(value)
    except ValueError:
        allowed = ", ".join(repr(status.value) for status in ExecutionStatus)
        raise ValidationError(f"{value!r} is not one of [{allowed}]") from None


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


@contextmanager
def _refused_as_update() -> Iterator[None]:
    """The pause service's refusals, prefixed as StackStorm's API prefixes them."""
    try:
        yield
    except ValidationError as error:
        raise ValidationError(f"{FAILED_UPDATE} {error}") from None


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
    current = locked_status(session, execution)
    if current in COMPLETED:
        raise ValidationError("Execution is already in completed state.")
    if current == S.CANCELING and wanted == S.CANCELED:
        if not children_active(session, execution):
            _move(session, execution, current, S.CANCELED, result, max_result_bytes)
    elif wanted in (S.CANCELING, S.CANCELED):
        if current != S.CANCELING:
            cancel_execution(session, execution_id, user=user)
    elif current == S.PAUSING and wanted == S.PAUSED:
        with _refused_as_update():
            check_pausable(execution, "pause")
        if not children_active(session, execution):
            _move(session, execution, current, S.PAUSED, result, max_result_bytes)
    elif wanted in (S.PAUSING, S.PAUSED):
        with _refused_as_update():
            request_pause(session, execution, user=user)
    elif wanted == S.RESUMING:
        with _refused_as_update():
            request_resume(session, execution, user=user)
    else:
        _move(session, execution, current, wanted, result, max_result_bytes)
    session.flush()
    session.refresh(execution)
    return execution
