"""Which rows retention removes, and removing one batch of them.

Each function reads at most ``limit`` candidates past ``before``, oldest first and after a
cursor (so rows it must keep are stepped over rather than read again) and deletes what may go
by primary key; the caller owns the transaction. Deletes are idempotent: a row another collector
removed first is simply not counted.

Executions go as whole trees: a root (an execution without a surviving parent) is removed with
all its descendants, and only when every execution in the tree is finished and past ``before``.
A child therefore never disappears while its parent is still shown, and a running workflow keeps
all of its finished steps.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from poundcake.engine.executions.models import ExecutionDB, ExecutionOutputDB, LiveActionDB
from poundcake.engine.executions.states import COMPLETED
from poundcake.engine.triggers.instances import TriggerInstanceStatus
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.engine.workflows.models import (
    TaskExecutionDB,
    WorkflowActionDB,
    WorkflowContextDB,
    WorkflowExecutionDB,
)

FINISHED = sorted(status.value for status in COMPLETED)
DONE_INSTANCES = sorted(
    (TriggerInstanceStatus.PROCESSED.value, TriggerInstanceStatus.PROCESSING_FAILED.value)
)
AnyRow = sa.Row[*tuple[Any, ...]]


@dataclass(frozen=True)
class Cursor:
    """Where the previous batch of one kind stopped: its last row's time and id."""

    moment: datetime
    id: str


@dataclass(frozen=True)
class Batch:
    """What one batch read and removed, and where the next one starts."""

    read: int
    removed: dict[str, int]
    cursor: Cursor | None

    def is_last(self, limit: int) -> bool:
        """Tell whether this batch came back short, so nothing older is left to read."""
        return self.read < limit


class Purge(Protocol):
    """The shape every kind's purge function has."""

    def __call__(
        self, session: Session, *, before: datetime, limit: int, after: Cursor | None = None
    ) -> Batch: ...


def _after(moment: Any, row_id: Any, cursor: Cursor | None) -> ColumnElement[bool]:
    # Written as a range on the time column so the index on it serves the scan.
    if cursor is None:
        return sa.true()
    return sa.and_(moment >= cursor.moment, sa.or_(moment > cursor.moment, row_id > cursor.id))


def _delete(
    session: Session,
    table: type[Any],
    column: Any,
    ids: Collection[str],
    *conditions: ColumnElement[bool],
) -> int:
    if not ids:
        return 0
    result = session.execute(
        sa.delete(table).where(column.in_(sorted(ids)), *conditions),
        execution_options={"synchronize_session": False},
    )
    return int(cast("sa.CursorResult[Any]", result).rowcount or 0)


def _last(rows: Sequence[AnyRow]) -> Cursor | None:
    return Cursor(rows[-1].moment, rows[-1].id) if rows else None


@dataclass
class _Tree:
    executions: set[str]
    liveactions: set[str]
    removable: bool


def _finished_before(row: AnyRow, before: datetime) -> bool:
    ended = row.end_timestamp or row.start_timestamp
    return bool(row.status in FINISHED and ended < before)


def _grow_trees(session: Session, roots: Sequence[AnyRow], before: datetime) -> list[_Tree]:
    """Collect each root's descendants, level by level, and whether all of them may go."""
    trees = [
        _Tree({root.id}, {root.liveaction_id} if root.liveaction_id else set(), True)
        for root in roots
    ]
    owner = {root.id: index for index, root in enumerate(roots)}
    frontier = list(owner)
    while frontier:
        children = session.execute(
            sa.select(
                ExecutionDB.id,
                ExecutionDB.parent,
                ExecutionDB.liveaction_id,
                ExecutionDB.status,
                ExecutionDB.start_timestamp,
                ExecutionDB.end_timestamp,
            ).where(ExecutionDB.parent.in_(frontier))
        ).all()
        frontier = []
        for child in children:
            if child.id in owner or child.parent not in owner:
                continue
            tree = trees[owner[child.parent]]
            owner[child.id] = owner[child.parent]
            frontier.append(child.id)
            tree.executions.add(child.id)
            if child.liveaction_id:
                tree.liveactions.add(child.liveaction_id)
            tree.removable = tree.removable and _finished_before(child, before)
    return trees


def purge_executions(
    session: Session, *, before: datetime, limit: int, after: Cursor | None = None
) -> Batch:
    """Remove up to ``limit`` finished execution trees older than ``before``, with their live
    actions and output."""
    execution = ExecutionDB
    parent = aliased(ExecutionDB)
    roots = session.execute(
        sa.select(
            execution.id,
            execution.liveaction_id,
            execution.start_timestamp.label("moment"),
        )
        .outerjoin(parent, parent.id == execution.parent)
        .where(
            execution.start_timestamp < before,
            sa.func.coalesce(execution.end_timestamp, execution.start_timestamp) < before,
            execution.status.in_(FINISHED),
            parent.id.is_(None),
            _after(execution.start_timestamp, execution.id, after),
        )
        .order_by(execution.start_timestamp, execution.id)
        .limit(limit)
    ).all()
    trees = [tree for tree in _grow_trees(session, roots, before) if tree.removable]
    executions = set().union(*(tree.executions for tree in trees))
    liveactions = set().union(*(tree.liveactions for tree in trees))
    removed = {
        "workflow_executions": _purge_workflows(session, executions),
        "execution_output": _delete(
            session, ExecutionOutputDB, ExecutionOutputDB.execution_id, executions
        ),
        "liveactions": _delete(session, LiveActionDB, LiveActionDB.id, liveactions),
        "executions": _delete(
            session, ExecutionDB, ExecutionDB.id, executions, ExecutionDB.status.in_(FINISHED)
        ),
    }
    return Batch(len(roots), removed, _last(roots))


def _purge_workflows(session: Session, executions: set[str]) -> int:
    """Orquesta workflow records of executions about to go: their task executions, context
    entries and actions, then the workflow executions."""
    if not executions:
        return 0
    workflows = set(
        session.scalars(
            sa.select(WorkflowExecutionDB.id).where(
                WorkflowExecutionDB.action_execution.in_(sorted(executions))
            )
        )
    )
    if not workflows:
        return 0
    for table, column in (
        (WorkflowActionDB, WorkflowActionDB.workflow_execution),
        (WorkflowContextDB, WorkflowContextDB.workflow_execution),
        (TaskExecutionDB, TaskExecutionDB.workflow_execution),
    ):
        session.execute(
            sa.delete(table)
            .where(column.in_(sorted(workflows)))
            .execution_options(synchronize_session=False)
        )
    return _delete(session, WorkflowExecutionDB, WorkflowExecutionDB.id, workflows)


def purge_execution_output(
    session: Session, *, before: datetime, limit: int, after: Cursor | None = None
) -> Batch:
    """Remove up to ``limit`` output chunks older than ``before`` of finished executions."""
    output = ExecutionOutputDB
    rows = session.execute(
        sa.select(output.id, output.timestamp.label("moment"))
        .outerjoin(ExecutionDB, ExecutionDB.id == output.execution_id)
        .where(
            output.timestamp < before,
            sa.or_(ExecutionDB.id.is_(None), ExecutionDB.status.in_(FINISHED)),
            _after(output.timestamp, output.id, after),
        )
        .order_by(output.timestamp, output.id)
        .limit(limit)
    ).all()
    removed = _delete(session, output, output.id, {row.id for row in rows})
    return Batch(len(rows), {"execution_output": removed}, _last(rows))


def purge_trigger_instances(
    session: Session, *, before: datetime, limit: int, after: Cursor | None = None
) -> Batch:
    """Remove up to ``limit`` processed (or failed) trigger instances that occurred before
    ``before``."""
    instance = TriggerInstanceDB
    rows = session.execute(
        sa.select(instance.id, instance.occurrence_time.label("moment"))
        .where(
            instance.occurrence_time < before,
            instance.status.in_(DONE_INSTANCES),
            _after(instance.occurrence_time, instance.id, after),
        )
        .order_by(instance.occurrence_time, instance.id)
        .limit(limit)
    ).all()
    ids = {row.id for row in rows}
    removed = _delete(session, instance, instance.id, ids, instance.status.in_(DONE_INSTANCES))
    return Batch(len(rows), {"trigger_instances": removed}, _last(rows))
