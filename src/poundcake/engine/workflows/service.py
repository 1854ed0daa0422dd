"""Starting and conducting Orquesta workflows in the database, one unit of work at a time.

:func:`start_workflow` turns a claimed ``orquesta`` execution into a workflow execution:
the definition is read and inspected (a definition that fails inspection fails the execution
with StackStorm's ``{"errors": [...], "output": None}``), input and vars are rendered, and the
first tasks are requested. :func:`conduct` moves a workflow on: it takes the workflow's row lock,
applies what changed since it last looked (a pause, resume or cancel asked of the workflow's
execution; task executions that completed, paused, went pending or resumed), requests the next
tasks, and writes the workflow's state, its task executions and its own execution's status and
result. Everything happens in the caller's transaction; what must be announced after commit is
returned. A workflow engine that dies mid-way loses nothing: the transaction rolls back and the
same changes are found again by whichever engine looks next.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, defer, load_only

from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.pausing import PAUSABLE_RUNNERS, Resumed, request_resume
from poundcake.engine.executions.service import (
    cancel_execution,
    get_execution,
    transition,
)
from poundcake.engine.executions.states import COMPLETED as EXECUTION_COMPLETED
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.workflows import machines as m
from poundcake.engine.workflows.children import apply_children
from poundcake.engine.workflows.conductor import Conductor
from poundcake.engine.workflows.definition import DefinitionError, read_document
from poundcake.engine.workflows.events import ConductorError
from poundcake.engine.workflows.expressions import ExpressionError, KeyValueReader
from poundcake.engine.workflows.inspection import inspect_document
from poundcake.engine.workflows.models import (
    WorkflowActionDB,
    WorkflowExecutionDB,
)
from poundcake.engine.workflows.requests import TaskRequester, action_parameter_schema
from poundcake.engine.workflows.state import WorkflowState
from poundcake.engine.workflows.store import WorkflowCaches, WorkflowStore
from poundcake.exceptions import PoundCakeError
from poundcake.ids import new_id

logger = logging.getLogger(__name__)

S = ExecutionStatus
# The workflow statuses its action execution takes on.
_MIRRORED = frozenset(
    {m.RUNNING, m.PAUSING, m.PAUSED, m.CANCELING, m.CANCELED, m.SUCCEEDED, m.FAILED}
)
# What conducting reads of a workflow's own execution: never its parameters (the whole input,
# twice with the live action's copy), which a transition does not need.
_CONDUCTED_COLUMNS = (
    ExecutionDB.id,
    ExecutionDB.liveaction_id,
    ExecutionDB.status,
    ExecutionDB.context,
    ExecutionDB.children,
)


class ExecutionChangedError(PoundCakeError):
    """The workflow's execution changed while it was being conducted; conduct again."""


@dataclass
class WorkflowEnvironment:
    """What conducting needs besides the session."""

    caches: WorkflowCaches
    cipher: DatastoreCipher | None
    api_url: str
    datastore: KeyValueReader | None = None


@dataclass
class Conducted:
    """What to announce after commit: executions requested, executions whose status changed
    (by liveaction id), and child workflows resumed."""

    requested: list[tuple[str, str]] = field(default_factory=list)
    updated: set[str] = field(default_factory=set)
    resumed: list[Resumed] = field(default_factory=list)


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


# --- starting ---------------------------------------------------------------------------------


def runtime_context(
    execution: ExecutionDB, *, workflow_id: str, api_url: str, system_user: str = "stanley"
) -> dict[str, Any]:
    """StackStorm's runtime context of a workflow: what ``ctx(st2)`` and ``ctx(parent)`` read."""
    context = dict(execution.context or {})
    action = execution.action_snapshot or {}
    st2: dict[str, Any] = {
        "action_execution_id": execution.id,
        "api_url": api_url,
        "user": context.get("user", system_user),
        "pack": context.get("pack"),
        "action": action.get("ref", execution.action),
        "runner": action.get("runner_type", execution.runner_type),
        "workflow_execution_id": workflow_id,
    }
    for key in ("api_user", "source_channel"):
        if context.get(key):
            st2[key] = context[key]
    runtime: dict[str, Any] = {"st2": st2}
    if context:
        runtime["parent"] = context
    return runtime


def failed_result(errors: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """StackStorm's result of a workflow that could not start."""
    return {"errors": [dict(error) for error in errors], "output": None}


def read_definition(path: Path) -> dict[str, Any]:
    """The parsed workflow document of an ``orquesta`` action's entry point."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DefinitionError(f"Unable to read the workflow definition {path}: {error}") from None
    return read_document(text)


def start_workflow(
    session: Session,
    *,
    execution: ExecutionDB,
    document: Mapping[str, Any],
    parameters: Mapping[str, Any],
    secrets: bool,
    env: WorkflowEnvironment,
    notify: dict[str, Any] | None = None,
) -> Conducted:
    """Create the workflow execution of a running ``orquesta`` execution and request its first
    tasks; a definition that fails inspection, or input that cannot be rendered, fails it.
    ``notify`` is the notify instruction for its tasks (:func:`workflow_notify`)."""
    workflow_id = new_id()
    context = runtime_context(execution, workflow_id=workflow_id, api_url=env.api_url)
    problems = inspect_document(
        document,
        known_context=context.keys(),
        action_parameters=lambda ref: action_parameter_schema(session, ref),
    )
    if problems:
        return _fail_execution(session, execution, failed_result(problems))
    row = WorkflowExecutionDB(
        id=workflow_id,
        action_execution=execution.id,
        spec=dict(document),
        input=dict(parameters) if not secrets else {},
        context=context,
        state={},
        status=m.UNSET,
        output=None,
        errors=[],
        sealed=secrets,
        start_timestamp=utcnow(),
        notify=notify,
    )
    session.add(row)
    session.flush()
    conductor, store = _load(session, row, env)
    conductor.start(parameters, context)
    if conductor.state.status in m.ABENDED:
        _save(row, conductor)
        return _fail_execution(session, execution, failed_result(conductor.state.errors))
    conductor.request_status(m.REQUESTED)
    _merge_context(execution, row)
    conducted = Conducted()
    _run_next(session, row, conductor, store, execution, env, conducted)
    _finish(session, row, conductor, execution, conducted)
    return conducted


def _merge_context(execution: ExecutionDB, row: WorkflowExecutionDB) -> None:
    """The workflow's execution context names its workflow execution, as StackStorm's does."""
    context = dict(execution.context or {})
    context["workflow_execution"] = row.id
    execution.context = context


def _fail_execution(session: Session, execution: ExecutionDB, result: dict[str, Any]) -> Conducted:
    current = S(execution.status)
    if current not in EXECUTION_COMPLETED:
        _move_execution(session, execution, current, S.FAILED, result)
    return Conducted(updated={str(execution.liveaction_id)})


# --- loading and saving -----------------------------------------------------------------------


def _load(
    session: Session, row: WorkflowExecutionDB, env: WorkflowEnvironment
) -> tuple[Conductor, WorkflowStore]:
    definition, graph = env.caches.definition(row)
    store = WorkflowStore(
        session, row, caches=env.caches, cipher=env.cipher, datastore=env.datastore
    )
    state = WorkflowState.from_document(row.state or {}, errors=row.errors, output=row.output)
    return Conductor(definition, graph, state, store), store


def _save(row: WorkflowExecutionDB, conductor: Conductor) -> None:
    state = conductor.state
    row.state = state.to_document()
    row.status = state.status
    row.errors = list(state.errors)
    row.output = state.output
    if state.status in m.COMPLETED and row.end_timestamp is None:
        row.end_timestamp = utcnow()


def lock_workflow(
    session: Session, workflow_id: str, *, skip_locked: bool = False
) -> WorkflowExecutionDB | None:
    """The workflow execution row, locked for this unit of work (None when another unit holds
    it and ``skip_locked``, or when it does not exist)."""
    statement = (
        sa.select(WorkflowExecutionDB)
        .options(defer(WorkflowExecutionDB.input))
        .where(WorkflowExecutionDB.id == workflow_id)
    )
    if session.get_bind().dialect.name != "sqlite":
        statement = statement.with_for_update(skip_locked=skip_locked)
    return session.scalars(statement).first()


# --- conducting -------------------------------------------------------------------------------


def conduct(
    session: Session,
    workflow_id: str,
    env: WorkflowEnvironment,
    *,
    skip_locked: bool = False,
) -> Conducted:
    """Move one workflow on (see the module docstring)."""
    row = lock_workflow(session, workflow_id, skip_locked=skip_locked)
    if row is None:
        return Conducted()
    execution = session.get(
        ExecutionDB, row.action_execution, options=[load_only(*_CONDUCTED_COLUMNS)]
    )
    if execution is None:
        return Conducted()
    conductor, store = _load(session, row, env)
    conducted = Conducted()
    _apply_request(session, row, conductor, execution, conducted)
    apply_children(session, row, conductor)
    _run_next(session, row, conductor, store, execution, env, conducted)
    _finish(session, row, conductor, execution, conducted)
    return conducted


def _apply_request(
    session: Session,
    row: WorkflowExecutionDB,
    conductor: Conductor,
    execution: ExecutionDB,
    conducted: Conducted,
) -> None:
    """A pause, resume or cancel asked of the workflow's execution (by the API)."""
    asked = execution.status
    status = conductor.state.status
    try:
        if asked == S.CANCELING and status not in m.CANCEL_STATUSES | m.COMPLETED:
            conductor.request_status(m.CANCELED)
            _cancel_root(session, execution, conducted)
        elif asked == S.PAUSING and status in m.RUNNING_STATUSES:
            conductor.request_status(m.PAUSED)
        elif asked == S.RESUMING and status in m.PAUSE_STATUSES:
            conductor.request_status(m.RESUMING)
            _resume_children(session, execution, conducted)
    except ConductorError as error:
        logger.warning("Workflow %s: %s", row.id, error)
    if asked in (S.CANCELING, S.PAUSING, S.RESUMING):
        _ring_child_workflows(session, execution, conducted)


def _ring_child_workflows(session: Session, execution: ExecutionDB, conducted: Conducted) -> None:
    """Child workflows a request passed down to take it at once, not at the next sweep."""
    children = list(execution.children or [])
    if not children:
        return
    conducted.updated |= {
        str(liveaction)
        for liveaction in session.scalars(
            sa.select(ExecutionDB.liveaction_id).where(
                ExecutionDB.id.in_(children),
                ExecutionDB.runner_type == "orquesta",
                ExecutionDB.status.in_(
                    [S.CANCELING.value, S.CANCELED.value, S.PAUSING.value, S.RESUMING.value]
                ),
            )
        )
    }


def _cancel_root(session: Session, execution: ExecutionDB, conducted: Conducted) -> None:
    """Canceling a sub-workflow cancels the whole tree, from its root down, as StackStorm does."""
    root = execution
    seen = {execution.id}
    while True:
        parent_id = ((root.context or {}).get("parent") or {}).get("execution_id")
        if not parent_id or parent_id in seen:
            break
        parent = session.get(ExecutionDB, parent_id)
        if parent is None:
            break
        seen.add(parent_id)
        root = parent
    if root.id != execution.id and root.status not in (S.CANCELING, S.CANCELED):
        user = str((execution.context or {}).get("user") or "stanley")
        outcome = cancel_execution(session, root.id, user=user)
        if outcome.refused is None:
            conducted.updated.add(str(root.liveaction_id))


def _resume_children(session: Session, execution: ExecutionDB, conducted: Conducted) -> None:
    """A resumed workflow resumes its paused child workflows (StackStorm's orquesta runner
    does); each is handed over after commit."""
    children = list(execution.children or [])
    if not children:
        return
    paused = session.scalars(
        sa.select(ExecutionDB).where(
            ExecutionDB.id.in_(children),
            ExecutionDB.runner_type.in_(sorted(PAUSABLE_RUNNERS)),
            ExecutionDB.status == S.PAUSED.value,
        )
    )
    user = str((execution.context or {}).get("user") or "stanley")
    for child in paused:
        resumed = request_resume(session, child, user=user)
        if resumed is not None:
            conducted.resumed.append(resumed)


def _run_next(
    session: Session,
    row: WorkflowExecutionDB,
    conductor: Conductor,
    store: WorkflowStore,
    execution: ExecutionDB,
    env: WorkflowEnvironment,
    conducted: Conducted,
) -> None:
    """Request what the conductor says runs next, until nothing new becomes ready."""
    if conductor.state.status in (m.REQUESTED, m.SCHEDULED):
        conductor.request_status(m.RUNNING)
    requester = TaskRequester(session, row, conductor, store, execution, env.cipher)
    _request_ready(conductor, requester, conducted)
    requester.record_children()


def _request_ready(conductor: Conductor, requester: TaskRequester, conducted: Conducted) -> None:
    """Request the tasks that become ready, round after round; one that cannot be requested
    fails the workflow."""
    while True:
        try:
            requests = conductor.next_tasks()
        except (ExpressionError, ConductorError, TypeError, ValueError) as error:
            conductor.log_error(error)
            conductor.request_status(m.FAILED)
            return
        if not requests:
            return
        for request in requests:
            conductor.mark_running(request)
        for request in requests:
            try:
                requester.request(request)
            except (PoundCakeError, ExpressionError, ConductorError) as error:
                conductor.log_error(
                    error,
                    task_id=request.task_id,
                    route=request.route,
                    message=requester.error_message(error),
                )
                conductor.request_status(m.FAILED)
                conducted.requested.extend(requester.requested)
                return
        conducted.requested.extend(requester.requested)
        requester.requested = []


def _finish(
    session: Session,
    row: WorkflowExecutionDB,
    conductor: Conductor,
    execution: ExecutionDB,
    conducted: Conducted,
) -> None:
    """Render the output of a completed workflow, save the state, and bring the workflow's
    execution to the workflow's status with its result."""
    status = conductor.state.status
    if status in m.COMPLETED:
        try:
            conductor.render_output()
        except ConductorError as error:
            logger.warning("Workflow %s: %s", row.id, error)
    _save(row, conductor)
    status = conductor.state.status
    current = S(execution.status)
    if status not in _MIRRORED or status == current.value or current in EXECUTION_COMPLETED:
        return
    if status == m.RUNNING and current not in (S.RESUMING, S.PAUSED, S.PAUSING):
        return
    result: dict[str, Any] = {"output": conductor.state.output or None}
    if status in m.ABENDED:
        result["errors"] = list(conductor.state.errors)
    _move_execution(session, execution, current, S(status), result)
    conducted.updated.add(str(execution.liveaction_id))


def _move_execution(
    session: Session,
    execution: ExecutionDB,
    current: ExecutionStatus,
    to: ExecutionStatus,
    result: dict[str, Any],
) -> None:
    values: dict[str, Any] = {}
    liveaction_values: dict[str, Any] = {}
    if to in EXECUTION_COMPLETED or to in (S.PAUSED, S.CANCELING):
        values = {"result": result}
        liveaction_values = {"lease_owner": None, "lease_expires_at": None}
    moved = transition(
        session,
        liveaction_id=str(execution.liveaction_id),
        to=to,
        allowed_from=(current,),
        liveaction_values=liveaction_values,
        execution_values=values,
    )
    if not moved:
        raise ExecutionChangedError(
            f"execution {execution.id} is no longer {current.value}; conducting again"
        )


def fail_workflow(
    session: Session, workflow_id: str, env: WorkflowEnvironment, reason: str = ""
) -> Conducted:
    """Fail a workflow that cannot be conducted (an unexpected error), with the reason in its
    errors, as StackStorm's workflow engine does."""
    row = lock_workflow(session, workflow_id)
    if row is None:
        return Conducted()
    execution = session.get(ExecutionDB, row.action_execution)
    if execution is None:
        return Conducted()
    conductor, _ = _load(session, row, env)
    conductor.log_error(
        reason or "the workflow engine could not conduct this workflow",
        message=f"Unknown error while processing workflow execution. {reason}".strip(),
    )
    if conductor.state.status not in m.COMPLETED:
        conductor.state.status = m.FAILED
    conducted = Conducted()
    _finish(session, row, conductor, execution, conducted)
    return conducted


# --- re-run -----------------------------------------------------------------------------------


def rerun_workflow(
    session: Session,
    *,
    execution: ExecutionDB,
    previous_execution_id: str,
    tasks: Sequence[str],
    reset: Sequence[str],
    env: WorkflowEnvironment,
) -> Conducted:
    """Re-run a completed workflow from named tasks in a new execution (``st2 execution re-run
    --tasks``): the workflow execution moves to the new execution and resumes."""
    previous = get_execution(session, previous_execution_id)
    workflow_id = (previous.context or {}).get("workflow_execution")
    row = lock_workflow(session, str(workflow_id)) if workflow_id else None
    try:
        if row is None:
            raise ConductorError(
                f'Unable to rerun workflow execution "{workflow_id}" because it does not exist.'
            )
        if row.status not in m.COMPLETED:
            raise ConductorError(
                f'Unable to rerun workflow execution "{row.id}" because it is not in a '
                "completed state."
            )
        conductor, store = _load(session, row, env)
        requests = []
        missing = []
        for name in tasks:
            entries = [e for e in conductor.state.sequence if e["id"] == name]
            if not entries:
                missing.append(name)
                continue
            for route in sorted({int(e["route"]) for e in entries}):
                requests.append((name, route, name in reset))
        if missing:
            raise ConductorError(
                "Unable to rerun workflow because one or more tasks is not found: "
                + ",".join(missing)
            )
        conductor.rerun(
            requests,
            failed_items=lambda task_id, route: _failed_items(session, store, task_id, route),
        )
    except ConductorError as error:
        return _fail_execution(session, execution, failed_result([{"message": str(error)}]))
    row.action_execution = execution.id
    context = dict(row.context or {})
    context.update(runtime_context(execution, workflow_id=row.id, api_url=env.api_url))
    row.context = context
    _merge_context(execution, row)
    row.end_timestamp = None
    conducted = Conducted()
    _run_next(session, row, conductor, store, execution, env, conducted)
    _finish(session, row, conductor, execution, conducted)
    return conducted


def _failed_items(session: Session, store: WorkflowStore, task_id: str, route: int) -> list[int]:
    task = store.itemized_task(task_id, route)
    if task is None:
        return []
    return [
        int(item_id)
        for item_id in session.scalars(
            sa.select(WorkflowActionDB.item_id).where(
                WorkflowActionDB.task_execution == task.id,
                WorkflowActionDB.status.in_(sorted(m.ABENDED)),
            )
        )
        if item_id is not None
    ]
