"""An execution's task tree for the UI: its workflow's tasks, as ``st2 execution get`` lists them.

A workflow's tasks are its child executions. Each is named as its runner names it (an Orquesta
task: ``context.orquesta.task_name``, with ``item_id`` for an item of a with-items task; an
action-chain task: ``context.chain.name``; a steps workflow's step: ``context.step``). A child
that is itself a workflow carries its own tasks, and the items of a with-items task are grouped
under their task. Siblings are in start order.

The tree is read from the engine's tables in one query per level of nesting, without parameters
or results (so there is nothing secret in it), and it is bounded: at most ``items`` items of a
with-items task (the rest counted in ``more``) and at most :data:`MAX_NODES` executions in all
(``truncated`` says when some were left out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.public import (
    WORKFLOW_RUNNER_TYPES,
    ExecutionDB,
    LiveActionDB,
    TaskExecutionDB,
    isoformat,
)
from poundcake.exceptions import NotFoundError, ValidationError

E = ExecutionDB
T = TaskExecutionDB
DEFAULT_ITEMS = 20
MAX_ITEMS = 200
MAX_NODES = 500


class TaskNode(TypedDict):
    """One task's execution (``kind`` "task"), or a with-items task (``kind`` "items")."""

    kind: Literal["task", "items"]
    # The execution (None for a with-items task: its items are executions).
    id: str | None
    name: str | None
    item_id: int | None
    task_execution_id: str | None
    action: str
    runner: str | None
    status: str
    start_timestamp: str | None
    end_timestamp: str | None
    # A sub-workflow's tasks, or a with-items task's first items.
    tasks: list[TaskNode]
    # Items of a with-items task not in ``tasks`` (0 for anything else).
    more: int


class TaskTree(TypedDict):
    """``GET /ui/api/executions/{id}/tasks``."""

    id: str
    runner: str
    status: str
    workflow: bool
    tasks: list[TaskNode]
    shown: int
    truncated: bool
    items: int


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _name(context: Any) -> tuple[str | None, int | None]:
    """The task name and item number a child's context gives it."""
    if not isinstance(context, Mapping):
        return None, None
    orquesta = context.get("orquesta")
    if isinstance(orquesta, Mapping):
        item_id = orquesta.get("item_id")
        return _text(orquesta.get("task_name")), item_id if isinstance(item_id, int) else None
    chain = context.get("chain")
    if isinstance(chain, Mapping):
        return _text(chain.get("name")), None
    return _text(context.get("step")), None


def _level(session: Session, parents: Sequence[str], items: int, limit: int) -> list[sa.Row[Any]]:
    """The children of ``parents``, at most ``items`` per with-items task, by parent and start."""
    # A with-items task's items share one partition (its task execution); any other child is
    # alone in its own. Only narrow columns are ranked: contexts are read for the rows kept.
    group = sa.case((T.itemized.is_(True), T.id), else_=E.id)
    window: dict[str, Any] = {"partition_by": (E.parent, group)}
    ranked = (
        sa.select(
            E.id,
            sa.func.row_number().over(order_by=(E.start_timestamp, E.id), **window).label("rank"),
            sa.func.count().over(**window).label("group_size"),
        )
        .select_from(E)
        .outerjoin(LiveActionDB, LiveActionDB.id == E.liveaction_id)
        .outerjoin(T, T.id == LiveActionDB.task_execution)
        .where(E.parent.in_(parents))
        .subquery()
    )
    query = (
        sa.select(
            E.id,
            E.parent,
            E.action,
            E.runner_type,
            E.status,
            E.start_timestamp,
            E.end_timestamp,
            E.context,
            T.id.label("task_execution_id"),
            T.itemized,
            T.task_name,
            T.status.label("task_status"),
            T.start_timestamp.label("task_start"),
            T.end_timestamp.label("task_end"),
            ranked.c.group_size,
        )
        .select_from(ranked)
        .join(E, E.id == ranked.c.id)
        .outerjoin(LiveActionDB, LiveActionDB.id == E.liveaction_id)
        .outerjoin(T, T.id == LiveActionDB.task_execution)
        .where(ranked.c.rank <= items)
        .order_by(E.parent, E.start_timestamp, E.id)
        .limit(limit)
    )
    return list(session.execute(query))


def _task(row: sa.Row[Any]) -> TaskNode:
    name, item_id = _name(row.context)
    return {
        "kind": "task",
        "id": row.id,
        "name": name,
        "item_id": item_id,
        "task_execution_id": row.task_execution_id,
        "action": row.action,
        "runner": row.runner_type,
        "status": row.status,
        "start_timestamp": isoformat(row.start_timestamp),
        "end_timestamp": isoformat(row.end_timestamp),
        "tasks": [],
        "more": 0,
    }


def _items(row: sa.Row[Any]) -> TaskNode:
    return {
        "kind": "items",
        "id": None,
        "name": row.task_name,
        "item_id": None,
        "task_execution_id": row.task_execution_id,
        "action": row.action,
        "runner": None,
        "status": row.task_status,
        "start_timestamp": isoformat(row.task_start),
        "end_timestamp": isoformat(row.task_end),
        "tasks": [],
        "more": int(row.group_size),
    }


def task_tree(session: Session, execution_id: str, *, items: int = DEFAULT_ITEMS) -> TaskTree:
    """The tasks of ``execution_id`` (none for an execution that is not a workflow)."""
    if not 1 <= items <= MAX_ITEMS:
        raise ValidationError(f"items must be between 1 and {MAX_ITEMS}")
    root = session.get(E, execution_id)
    if root is None:
        raise NotFoundError(f'No execution with id "{execution_id}"')
    tree: TaskTree = {
        "id": root.id,
        "runner": root.runner_type,
        "status": root.status,
        "workflow": root.runner_type in WORKFLOW_RUNNER_TYPES,
        "tasks": [],
        "shown": 0,
        "truncated": False,
        "items": items,
    }
    branches: dict[str, list[TaskNode]] = {root.id: tree["tasks"]}
    parents = [root.id]
    while parents and not tree["truncated"]:
        room = MAX_NODES - tree["shown"]
        rows = _level(session, parents, items, room + 1)
        if len(rows) > room:
            tree["truncated"] = True
            rows = rows[:room]
        parents = []
        groups: dict[str, TaskNode] = {}
        for row in rows:
            node = _task(row)
            siblings = branches[row.parent]
            if row.itemized:
                group = groups.get(row.task_execution_id)
                if group is None:
                    group = groups[row.task_execution_id] = _items(row)
                    siblings.append(group)
                group["tasks"].append(node)
                group["more"] -= 1
            else:
                siblings.append(node)
            tree["shown"] += 1
            if row.runner_type in WORKFLOW_RUNNER_TYPES:
                branches[row.id] = node["tasks"]
                parents.append(row.id)
    return tree
