"""Requesting the action executions of workflow tasks.

A task the conductor says runs now gets a task execution (a with-items task keeps one for all
its items) and one child execution per action, requested through the execution service like any
other, with StackStorm's context (``parent`` and ``orquesta``: workflow and task execution,
task name and route, item) and the task's delay. A task without an action, or with an empty
list of items, succeeds at once. A with-items task's items are stored rendered when it starts,
so later items cost one row read each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.actions.models import ActionDB
from poundcake.engine.actions.parameters import merge_schemas
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.service import (
    LoadedAction,
    add_children,
    load_action,
    request_execution,
)
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.runners.models import RunnerTypeDB
from poundcake.engine.workflows import machines as m
from poundcake.engine.workflows.conductor import Conductor
from poundcake.engine.workflows.events import ActionEvent, ActionSpec, TaskRequest
from poundcake.engine.workflows.models import TaskExecutionDB, WorkflowActionDB, WorkflowExecutionDB
from poundcake.engine.workflows.store import WorkflowStore
from poundcake.exceptions import NotFoundError, ValidationError
from poundcake.ids import new_id

MILLISECONDS = 1000


def action_parameter_schema(session: Session, ref: str) -> dict[str, Any] | None:
    """An action's parameters merged over its runner's, or None when it is not registered."""
    row = session.execute(
        sa.select(ActionDB.parameters, RunnerTypeDB.runner_parameters)
        .outerjoin(RunnerTypeDB, RunnerTypeDB.name == ActionDB.runner_type)
        .where(ActionDB.ref == ref)
    ).one_or_none()
    if row is None:
        return None
    return merge_schemas(row.runner_parameters or {}, row.parameters or {})


def _now() -> datetime:
    return datetime.now(UTC)


def action_delay(request: TaskRequest, item_id: int | None) -> int | None:
    """The delay of one action, in milliseconds: the task's delay, for items only the first
    ``concurrency`` of them (StackStorm's rule)."""
    delay = request.delay
    if not delay:
        return None
    concurrency = request.concurrency
    if request.itemized and concurrency and item_id is not None and item_id >= concurrency:
        return None
    return delay * MILLISECONDS


def workflow_notify(config: Mapping[str, Any], tasks: Sequence[Any]) -> dict[str, Any] | None:
    """StackStorm's notify instruction of a workflow execution: its own notify settings and the
    tasks (the ``notify`` runner parameter) whose actions carry them."""
    if not config or not tasks:
        return None
    return {"config": dict(config), "tasks": [str(task) for task in tasks]}


class TaskRequester:
    """Requests the actions of tasks for one workflow in one unit of work."""

    def __init__(
        self,
        session: Session,
        row: WorkflowExecutionDB,
        conductor: Conductor,
        store: WorkflowStore,
        execution: ExecutionDB,
        cipher: DatastoreCipher | None,
    ) -> None:
        self.session = session
        self.row = row
        self.conductor = conductor
        self.store = store
        self.execution = execution
        self.cipher = cipher
        self.requested: list[tuple[str, str]] = []
        self._children: list[str] = []
        self._actions: dict[str, LoadedAction] = {}
        st2 = (row.context or {}).get("st2") or {}
        self.user = str(st2.get("user") or "stanley")
        self.parent: dict[str, Any] = {
            "execution_id": execution.id,
            "user": st2.get("user"),
            "pack": st2.get("pack"),
        }
        for key in ("api_user", "source_channel"):
            if st2.get(key):
                self.parent[key] = st2[key]
        # The workflow's notify goes to the tasks its ``notify`` runner parameter names.
        instruction = row.notify or {}
        self._notify = dict(instruction.get("config") or {})
        self._notify_tasks = {str(task) for task in instruction.get("tasks") or []}

    def record_children(self) -> None:
        """Append the executions requested so far to the workflow's ``children``, together."""
        if self._children:
            add_children(self.session, self.execution.id, self._children)
            self._children = []

    def request(self, request: TaskRequest) -> None:
        """Run one task the conductor asked for."""
        task = self._task_execution(request)
        definition = self.conductor.definition.task(request.task_id)
        if request.items is not None:
            self._store_items(task, request.items)
        if definition.action is None:
            self._complete_at_once(task, request, result=None)
            return
        if request.itemized and request.items_count == 0:
            self._complete_at_once(task, request, result=[])
            return
        for action in request.actions:
            self._request_action(task, request, action)

    def _task_execution(self, request: TaskRequest) -> TaskExecutionDB:
        if request.itemized and request.items is None:
            # Later items of a running task, or the items of a re-run task: the task execution
            # that holds the rendered items goes on.
            existing = self.store.itemized_task(request.task_id, request.route)
            if existing is not None:
                existing.status = m.RUNNING
                existing.end_timestamp = None
                return existing
        definition = self.conductor.definition.task(request.task_id)
        raw_tasks = (self.row.spec or {}).get("tasks") or {}
        task = TaskExecutionDB(
            id=new_id(),
            workflow_execution=self.row.id,
            task_name=request.task_id,
            task_id=request.task_id,
            task_route=request.route,
            task_spec=dict(raw_tasks.get(request.task_id) or {}),
            delay=request.delay,
            itemized=definition.items is not None,
            items_count=request.items_count,
            items_concurrency=request.concurrency,
            context={"ctxs": list(request.contexts)},
            status=m.REQUESTED,
            result={"items": []} if definition.items is not None else None,
            start_timestamp=_now(),
        )
        self.session.add(task)
        self.session.flush()
        return task

    def _store_items(self, task: TaskExecutionDB, items: list[ActionSpec]) -> None:
        if not items:
            return
        self.session.execute(
            sa.insert(WorkflowActionDB),
            [
                {
                    "id": new_id(),
                    "workflow_execution": self.row.id,
                    "task_execution": task.id,
                    "item_id": item.item_id,
                    "action": item.action,
                    "input": self.store.seal(item.input),
                    "action_execution": None,
                    "status": m.UNSET,
                }
                for item in items
            ],
        )

    def _complete_at_once(self, task: TaskExecutionDB, request: TaskRequest, result: Any) -> None:
        task.status = m.SUCCEEDED
        task.end_timestamp = _now()
        self.session.flush()
        self.conductor.update_task(
            request.task_id, request.route, ActionEvent(m.SUCCEEDED, result=result)
        )

    def _request_action(
        self, task: TaskExecutionDB, request: TaskRequest, action: ActionSpec
    ) -> None:
        if not isinstance(action.action, str) or not action.action:
            raise ValidationError(f'Unable to find action "{action.action}".')
        orquesta: dict[str, Any] = {
            "workflow_execution_id": self.row.id,
            "task_execution_id": task.id,
            "task_name": task.task_name,
            "task_id": task.task_id,
            "task_route": task.task_route,
        }
        if action.item_id is not None:
            orquesta["item_id"] = action.item_id
        parameters = action.input if isinstance(action.input, Mapping) else {}
        if action.input and not isinstance(action.input, Mapping):
            raise ValidationError(
                f'The input of task "{task.task_id}" is not a mapping: {action.input!r}'
            )
        task.status = m.RUNNING
        self.session.flush()
        loaded = self._actions.get(action.action)
        if loaded is None:
            loaded = self._actions[action.action] = load_action(self.session, action.action)
        requested = request_execution(
            self.session,
            action_ref=action.action,
            parameters=dict(parameters),
            user=self.user,
            context={"parent": self.parent, "orquesta": orquesta},
            delay=action_delay(request, action.item_id),
            parent=self.execution.id,
            cipher=self.cipher,
            loaded=loaded,
            liveaction_values={"workflow_execution": self.row.id, "task_execution": task.id},
            add_to_parent=False,
            notify=self._notify,
            skip_notify=task.task_name not in self._notify_tasks,
        )
        self._children.append(requested.execution_id)
        self._link(task, action, requested.execution_id)
        self.requested.append((requested.liveaction_id, requested.execution_id))

    def _link(self, task: TaskExecutionDB, action: ActionSpec, execution_id: str) -> None:
        if action.item_id is not None:
            updated = self.session.execute(
                sa.update(WorkflowActionDB)
                .where(
                    WorkflowActionDB.task_execution == task.id,
                    WorkflowActionDB.item_id == action.item_id,
                )
                .values(action_execution=execution_id, status=m.RUNNING)
                .execution_options(synchronize_session=False)
            )
            if updated.rowcount:  # type: ignore[attr-defined]
                return
        self.session.execute(
            sa.insert(WorkflowActionDB).values(
                id=new_id(),
                workflow_execution=self.row.id,
                task_execution=task.id,
                item_id=action.item_id,
                action=action.action,
                input=None,
                action_execution=execution_id,
                status=m.RUNNING,
            )
        )

    @staticmethod
    def error_message(error: Exception) -> str:
        """How StackStorm names a failure to request a task's action."""
        text = str(error)
        if isinstance(error, (NotFoundError, ValidationError)) and "cannot be found" in text:
            reference = text.split('"')[1] if '"' in text else text
            return f'InvalidActionReferencedException: Unable to find action "{reference}".'
        kind = getattr(error, "kind", None) or type(error).__name__
        return f"{kind}: {text}"
