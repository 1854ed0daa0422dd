"""What happened to a workflow's actions, given to its conductor.

:func:`apply_children` reads the workflow's actions whose executions changed in a way the
conductor has not taken (completed, paused, went pending, or resumed after one of those), in the
order they ended, and gives each to the conductor as an action event; it keeps each task
execution's status, result and end in step. A with-items task's item results are read only when
the task completes (or an item failed), so an item's event costs the same whatever the number of
items.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.workflows import machines as m
from poundcake.engine.workflows.conductor import Conductor
from poundcake.engine.workflows.events import ActionEvent, ConductorError
from poundcake.engine.workflows.models import (
    TaskExecutionDB,
    WorkflowActionDB,
    WorkflowExecutionDB,
)
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)

# Child statuses the conductor acts on; ``running`` after one of them is a resume. An action's
# row keeps the status the conductor last took, ``running`` from the moment it is requested.
CHILD_EVENTS = frozenset({*m.COMPLETED, m.PAUSED, m.PENDING})
SEEN_STATUSES = sorted(CHILD_EVENTS | {m.RUNNING})
# The statuses an action's row has while its execution may still change.
OPEN_STATUSES = sorted({m.RUNNING, m.PAUSED, m.PENDING})


def apply_children(session: Session, row: WorkflowExecutionDB, conductor: Conductor) -> None:
    """Give the conductor what happened to the workflow's actions since it last looked."""
    changed = session.execute(
        sa.select(WorkflowActionDB, ExecutionDB.status, ExecutionDB.end_timestamp)
        .join(ExecutionDB, ExecutionDB.id == WorkflowActionDB.action_execution)
        .where(
            WorkflowActionDB.workflow_execution == row.id,
            WorkflowActionDB.status.in_(OPEN_STATUSES),
            ExecutionDB.status.in_(SEEN_STATUSES),
            ExecutionDB.status != WorkflowActionDB.status,
        )
        .order_by(ExecutionDB.end_timestamp, WorkflowActionDB.id)
    ).all()
    tasks: dict[str, TaskExecutionDB] = {}
    for action, status, _ in changed:
        previous = action.status
        action.status = status
        task = _task_of(session, action, tasks)
        if status in CHILD_EVENTS:
            _child_changed(session, row, conductor, action, task, previous, status)
        elif previous in (m.PAUSED, m.PENDING):
            _child_resumed(conductor, action, task, previous)


def _task_of(
    session: Session, action: WorkflowActionDB, tasks: dict[str, TaskExecutionDB]
) -> TaskExecutionDB:
    """The task execution of an action, read once per unit of work (the session holds unchanged
    rows only weakly, so asking it again would read the row again)."""
    task = tasks.get(action.task_execution) or session.get(TaskExecutionDB, action.task_execution)
    if task is None:
        raise ValidationError(f"task execution {action.task_execution} is missing")
    tasks[action.task_execution] = task
    return task


def _child_changed(
    session: Session,
    row: WorkflowExecutionDB,
    conductor: Conductor,
    action: WorkflowActionDB,
    task: TaskExecutionDB,
    previous: str,
    status: str,
) -> None:
    result = None
    if not task.itemized or status in m.ABENDED:
        # An item's result is read with the others when its task completes; a failed one is
        # also kept in the workflow's errors.
        result = session.scalar(
            sa.select(ExecutionDB.result).where(ExecutionDB.id == action.action_execution)
        )
    if task.status == m.PAUSED:
        task.status = m.RUNNING
    if not task.itemized:
        task.status = status
        task.result = result if result else task.result
        if status in m.COMPLETED:
            task.end_timestamp = utcnow()
        event = ActionEvent(status, result=result)
    else:
        event = ActionEvent(
            status,
            result=result,
            item_id=action.item_id,
            previous=previous,
            accumulated=lambda: [item["result"] for item in _item_results(session, task)],
        )
    try:
        conductor.update_task(task.task_id, task.task_route, event)
    except ConductorError as error:
        logger.warning("Workflow %s, task %s: %s", row.id, task.task_id, error)
        conductor.log_error(error, task_id=task.task_id, route=task.task_route)
        conductor.request_status(m.FAILED)
        return
    entry = conductor.entry(task.task_id, task.task_route)
    if task.itemized and entry is not None:
        _close_itemized(session, task, str(entry.get("status")))


def _child_resumed(
    conductor: Conductor, action: WorkflowActionDB, task: TaskExecutionDB, previous: str
) -> None:
    task.status = m.RUNNING
    try:
        conductor.request_status(m.RUNNING)
    except ConductorError:
        logger.debug("Workflow already running while task %s resumes", task.task_id)
    conductor.update_task(
        task.task_id,
        task.task_route,
        ActionEvent(m.RUNNING, item_id=action.item_id, previous=previous),
    )


def _item_results(session: Session, task: TaskExecutionDB) -> list[dict[str, Any]]:
    rows = session.execute(
        sa.select(WorkflowActionDB.item_id, WorkflowActionDB.status, ExecutionDB.result)
        .outerjoin(ExecutionDB, ExecutionDB.id == WorkflowActionDB.action_execution)
        .where(WorkflowActionDB.task_execution == task.id)
        .order_by(WorkflowActionDB.item_id)
    ).all()
    return [
        {"status": status if status != m.UNSET else None, "result": result}
        for _, status, result in rows
    ]


def _close_itemized(session: Session, task: TaskExecutionDB, status: str) -> None:
    """A with-items task execution ends with its conductor task (every item completed, or one
    failed and none still runs: items never started stay unrun), or when a retry runs the task
    again in a new task execution; it keeps every item's status and result. The conductor's
    counts decide, so an item's event costs the same whatever the number of items."""
    if status not in m.COMPLETED and status != m.RETRYING:
        return
    items = _item_results(session, task)
    if status == m.RETRYING:
        succeeded = all(item["status"] == m.SUCCEEDED for item in items)
        status = m.SUCCEEDED if succeeded else m.FAILED
    task.status = status
    task.result = {"items": items}
    task.end_timestamp = utcnow()
