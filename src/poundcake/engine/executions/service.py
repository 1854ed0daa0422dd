"""The execution service: request, move through the lifecycle, complete, cancel, abandon.

Every status change goes through :func:`transition`, a compare-and-set on ``liveaction_db``
(the work item, which serialises concurrent changes) mirrored onto ``execution_db`` in the same
transaction, with the change appended to the execution's ``log``. Functions take the session,
flush and never commit; the caller owns the unit of work and publishes messages after commit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import ColumnElement

from poundcake.db.base import table_of
from poundcake.engine.actions.models import ActionDB
from poundcake.engine.actions.parameters import (
    check_live_parameters,
    merge_schemas,
    resolve_parameters,
    secret_names,
)
from poundcake.engine.documents import action_document, isoformat, runner_document
from poundcake.engine.executions.completion import finish_executions
from poundcake.engine.executions.models import ExecutionDB, LiveActionDB
from poundcake.engine.executions.results import (
    STAGED_RESULT,
    can_stage,
    clear_staged,
    holds_encoded_text,
    plain,
    stage_result,
)
from poundcake.engine.executions.sealed import seal_parameters
from poundcake.engine.executions.states import (
    CANCELABLE,
    COMPLETED,
    ExecutionStatus,
    check_transition,
)
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.keyvalue.lookup import datastore_context
from poundcake.engine.notifier.settings import execution_notify
from poundcake.engine.packs.models import ConfigDB, ConfigSchemaDB
from poundcake.engine.packs.schema import config_with_defaults
from poundcake.engine.runners.models import RunnerTypeDB
from poundcake.exceptions import ConflictError, NotFoundError, ValidationError
from poundcake.ids import new_id

logger = logging.getLogger(__name__)

S = ExecutionStatus
DEFAULT_MAX_RESULT_BYTES = 12 * 1024 * 1024
# Runner types whose executions are workflows (they run child executions).
WORKFLOW_RUNNER_TYPES = frozenset({"action-chain", "orquesta", "steps"})
# Workflow runner types that cancel gracefully, as StackStorm's orquesta does: a running action
# finishes and no more start; child workflows are canceled, children not started too.
GRACEFUL_CANCEL_RUNNER_TYPES = frozenset({"steps", "orquesta"})
NOT_STARTED: frozenset[ExecutionStatus] = frozenset({S.REQUESTED, S.SCHEDULED, S.DELAYED})
# Statuses in which a runner may hold the execution under its lease: a pausing workflow
# finishes its task first, and one resumed before it stopped is still run by that runner.
LEASED: frozenset[ExecutionStatus] = frozenset({S.RUNNING, S.CANCELING, S.PAUSING, S.RESUMING})
_TRUNCATION_NOTE = "... [truncated by PoundCake: result larger than the configured limit]"


def utcnow() -> datetime:
    """Return now as an aware UTC datetime."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class RequestedExecution:
    """What a caller needs after commit to hand the execution to the scheduler (or, when it
    was scheduled at once, to the runners: whether it is a workflow, and its runner type)."""

    execution_id: str
    liveaction_id: str
    action_ref: str
    status: ExecutionStatus
    workflow: bool = False
    runner_type: str | None = None


LoadedAction = tuple[ActionDB, RunnerTypeDB, dict[str, Any]]


def load_action(session: Session, action_ref: str) -> LoadedAction:
    """Return an enabled action, its runner type and its pack's config (with its schema's
    defaults), in one query, or raise StackStorm's 400 messages."""
    row = session.execute(
        sa.select(ActionDB, RunnerTypeDB, ConfigDB.values, ConfigSchemaDB.attributes)
        .outerjoin(RunnerTypeDB, RunnerTypeDB.name == ActionDB.runner_type)
        .outerjoin(ConfigDB, ConfigDB.pack == ActionDB.pack)
        .outerjoin(ConfigSchemaDB, ConfigSchemaDB.pack == ActionDB.pack)
        .where(ActionDB.ref == action_ref)
    ).one_or_none()
    if row is None:
        raise ValidationError(f'Action "{action_ref}" cannot be found.')
    action, runner, values, attributes = row
    if not action.enabled:
        raise ValidationError(f'Unable to execute. Action "{action_ref}" is disabled.')
    if runner is None:
        raise ValidationError(f'Runner type "{action.runner_type}" is not registered.')
    if not runner.enabled:
        raise ValidationError(f'Runner type "{runner.name}" is disabled.')
    return action, runner, config_with_defaults(values, attributes)


def render_context(
    session: Session,
    *,
    config: Mapping[str, Any],
    action_context: Mapping[str, Any],
    cipher: DatastoreCipher | None = None,
) -> dict[str, Any]:
    """What parameter templates may refer to besides other parameters."""
    user = action_context.get("user")
    return {
        **datastore_context(session, user=str(user) if user else None, cipher=cipher),
        "action_context": dict(action_context),
        "config_context": dict(config),
    }


@dataclass(frozen=True)
class PreparedExecution:
    """A validated execution request and its live action and execution rows, to insert."""

    requested: RequestedExecution
    liveaction: dict[str, Any]
    execution: dict[str, Any]


# SQLite takes at most 127 arguments to a function (json_insert: two per child).
_CHILDREN_PER_APPEND = 60


def prepare_execution(
    session: Session,
    *,
    action_ref: str,
    parameters: Mapping[str, Any] | None = None,
    user: str,
    context: Mapping[str, Any] | None = None,
    delay: int | None = None,
    parent: str | None = None,
    extra: Mapping[str, Any] | None = None,
    cipher: DatastoreCipher | None = None,
    rendered: bool | frozenset[str] = False,
    loaded: LoadedAction | None = None,
    liveaction_values: Mapping[str, Any] | None = None,
    notify: Mapping[str, Any] | None = None,
    skip_notify: bool = False,
) -> PreparedExecution:
    """Validate a new execution and build its rows in ``requested``, not yet written.

    ``extra`` carries the snapshots a rule adds (``rule``, ``trigger``, ``trigger_type``,
    ``trigger_instance``). Parameters are checked and rendered now so a bad request fails at
    once with StackStorm's message; the execution stores the live parameters as rendered, the
    secret ones sealed with ``cipher`` (:mod:`poundcake.engine.executions.sealed`; required when
    there are any).
    ``rendered`` says the caller rendered them already (a rule, from its trigger's payload):
    they are then taken as text, never rendered a second time; a set names the parameters
    rendered already (a re-run's old ones), the others are rendered now. ``loaded`` is what
    :func:`load_action` returned for this action in this session (a caller requesting many
    executions of one action loads it once); ``liveaction_values`` sets more of the live
    action's columns (a workflow task's ``workflow_execution`` and ``task_execution``).
    ``notify`` is what the request asks to be notified of (the API's ``notify``, a workflow
    task's); the action's own ``notify`` wins when it has any, as in StackStorm, and
    ``skip_notify`` (a workflow task left out of notifications) sends none.
    :func:`insert_executions` writes the rows, many at once.
    """
    parameters = dict(parameters or {})
    action, runner, config = loaded or load_action(session, action_ref)
    schema = merge_schemas(runner.runner_parameters or {}, action.parameters or {})
    check_live_parameters(schema, parameters)
    execution_context = {**(context or {}), "user": user, "pack": action.pack}
    final = resolve_parameters(
        schema,
        parameters,
        render_context(session, config=config, action_context=execution_context, cipher=cipher),
        literal=parameters.keys() if rendered is True else (rendered or frozenset()),
    )
    stored = seal_parameters(
        {name: final[name] for name in parameters if name in final}, secret_names(schema), cipher
    )
    now = utcnow()
    liveaction_id = new_id()
    execution_id = new_id()
    extra = dict(extra or {})
    trigger_instance = extra.get("trigger_instance")
    rule = extra.get("rule")
    notify_settings = execution_notify(action.notify, notify, skip=skip_notify)
    liveaction_row: dict[str, Any] = dict(
        id=liveaction_id,
        action=action.ref,
        action_is_workflow=runner.name in WORKFLOW_RUNNER_TYPES,
        parameters=stored,
        status=S.REQUESTED.value,
        start_timestamp=now,
        context=execution_context,
        callback={},
        runner_info={},
        notify=notify_settings,
        delay=delay,
        **(liveaction_values or {}),
    )
    execution_row: dict[str, Any] = dict(
        id=execution_id,
        action=action.ref,
        action_snapshot=action_document(action),
        runner=runner_document(runner),
        runner_type=runner.name,
        liveaction_id=liveaction_id,
        liveaction={
            "id": liveaction_id,
            "action": action.ref,
            "parameters": stored,
            "callback": {},
            "action_is_workflow": runner.name in WORKFLOW_RUNNER_TYPES,
            "runner_info": {},
            "notify": notify_settings,
        },
        status=S.REQUESTED.value,
        start_timestamp=now,
        parameters=stored,
        result={},
        result_size=0,
        result_truncated=False,
        context=execution_context,
        context_user=user,
        parent=parent,
        children=[],
        log=[{"timestamp": isoformat(now), "status": S.REQUESTED.value}],
        delay=delay,
        rule=rule,
        rule_ref=rule.get("ref") if isinstance(rule, dict) else None,
        trigger=extra.get("trigger"),
        trigger_type=extra.get("trigger_type"),
        trigger_instance=trigger_instance,
        trigger_instance_id=trigger_instance.get("id")
        if isinstance(trigger_instance, dict)
        else None,
    )
    return PreparedExecution(
        RequestedExecution(
            execution_id,
            liveaction_id,
            action.ref,
            S.REQUESTED,
            workflow=runner.name in WORKFLOW_RUNNER_TYPES,
            runner_type=runner.name,
        ),
        liveaction_row,
        execution_row,
    )


def scheduled_at_once(prepared: PreparedExecution) -> PreparedExecution:
    """The same execution written ``scheduled`` (its log says requested, then scheduled): for
    a caller that knows nothing holds it back (no delay, no concurrency policy), so that it
    goes to the runners without a pass through the scheduler."""
    check_transition(S.REQUESTED, S.SCHEDULED)
    if prepared.liveaction.get("delay"):
        raise ValueError("an execution with a delay is scheduled by the scheduler")
    now = isoformat(utcnow())
    scheduled = S.SCHEDULED.value
    log = [*prepared.execution["log"], {"timestamp": now, "status": scheduled}]
    return PreparedExecution(
        replace(prepared.requested, status=S.SCHEDULED),
        {**prepared.liveaction, "status": scheduled},
        {**prepared.execution, "status": scheduled, "log": log},
    )


def insert_executions(session: Session, prepared: Sequence[PreparedExecution]) -> None:
    """Write prepared executions: one multi-row insert per table, skipping the ORM."""
    if not prepared:
        return
    session.execute(sa.insert(table_of(LiveActionDB)), [item.liveaction for item in prepared])
    session.execute(sa.insert(table_of(ExecutionDB)), [item.execution for item in prepared])


def request_execution(session: Session, **options: Any) -> RequestedExecution:
    """Validate and record a new execution in ``requested``; the options are
    :func:`record_execution`'s."""
    return record_execution(session, **options).requested


def record_execution(
    session: Session,
    *,
    action_ref: str,
    parameters: Mapping[str, Any] | None = None,
    user: str,
    context: Mapping[str, Any] | None = None,
    delay: int | None = None,
    parent: str | None = None,
    extra: Mapping[str, Any] | None = None,
    cipher: DatastoreCipher | None = None,
    rendered: bool | frozenset[str] = False,
    loaded: LoadedAction | None = None,
    liveaction_values: Mapping[str, Any] | None = None,
    add_to_parent: bool = True,
    notify: Mapping[str, Any] | None = None,
    skip_notify: bool = False,
) -> PreparedExecution:
    """Validate and record a new execution in ``requested`` (see :func:`prepare_execution`);
    return its rows as written (a caller answering with the execution's document builds it
    from them instead of reading the row back).

    ``add_to_parent`` false leaves appending it to its parent's ``children`` to the caller
    (:func:`add_children`, once for all the children it requests in its unit of work).
    """
    prepared = prepare_execution(
        session,
        action_ref=action_ref,
        parameters=parameters,
        user=user,
        context=context,
        delay=delay,
        parent=parent,
        extra=extra,
        cipher=cipher,
        rendered=rendered,
        loaded=loaded,
        liveaction_values=liveaction_values,
        notify=notify,
        skip_notify=skip_notify,
    )
    insert_executions(session, [prepared])
    if parent and add_to_parent:
        add_children(session, parent, [prepared.requested.execution_id])
    return prepared


def add_children(session: Session, parent_id: str, child_ids: Sequence[str]) -> None:
    """Append to the parent's ``children`` in the database, in one statement per 60 children,
    without reading the list. The database rewrites the whole list on each append, so
    a workflow with thousands of items appends each unit of work's children together."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    for start in range(0, len(child_ids), _CHILDREN_PER_APPEND):
        chunk = child_ids[start : start + _CHILDREN_PER_APPEND]
        pairs = [part for child_id in chunk for part in ("$[#]" if sqlite else "$", child_id)]
        column = sa.func.coalesce(ExecutionDB.children, "[]")
        appended = (
            sa.func.json_insert(column, *pairs)
            if sqlite
            else (sa.func.JSON_ARRAY_APPEND(column, *pairs))
        )
        updated = session.execute(
            sa.update(ExecutionDB)
            .where(ExecutionDB.id == parent_id)
            .values(children=appended)
            .execution_options(synchronize_session=False)
        )
        if not updated.rowcount:  # type: ignore[attr-defined]
            raise NotFoundError(f"parent execution {parent_id} not found")
    loaded = session.identity_map.get(identity_key(ExecutionDB, parent_id))
    if loaded is not None:
        session.expire(loaded, ["children"])


def get_execution(session: Session, execution_id: str) -> ExecutionDB:
    """Return one execution or raise NotFoundError."""
    execution = session.get(ExecutionDB, execution_id)
    if execution is None:
        raise NotFoundError(f'Resource with a reference or id "{execution_id}" not found')
    return execution


def _log_append(session: Session, status: ExecutionStatus, at: datetime) -> ColumnElement[Any]:
    stamp = isoformat(at)
    column = ExecutionDB.log
    if session.get_bind().dialect.name == "sqlite":
        entry = sa.func.json_object("timestamp", stamp, "status", status.value)
        return sa.func.json_insert(column, "$[#]", entry)
    entry = sa.func.JSON_OBJECT("timestamp", stamp, "status", status.value)
    return sa.func.JSON_ARRAY_APPEND(column, "$", entry)


def _check(to: ExecutionStatus, allowed_from: Iterable[ExecutionStatus]) -> list[str]:
    sources = list(allowed_from)
    for source in sources:
        check_transition(source, to)
    return [status.value for status in sources]


def _execution_values(
    session: Session, to: ExecutionStatus, now: datetime, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    values: dict[str, Any] = {"status": to.value, "log": _log_append(session, to, now)}
    if to in COMPLETED:
        values["end_timestamp"] = now
    values.update(extra or {})
    return values


def transition(
    session: Session,
    *,
    liveaction_id: str,
    to: ExecutionStatus,
    allowed_from: Iterable[ExecutionStatus],
    liveaction_values: Mapping[str, Any] | None = None,
    execution_values: Mapping[str, Any] | None = None,
    finish: bool = True,
) -> bool:
    """Move one execution to ``to`` if it is in one of ``allowed_from``; tell whether it moved.

    On MariaDB both rows change in one multi-table UPDATE (one round trip on the hot path).
    ``finish`` false leaves what finishing calls for (:func:`finish_executions`) to the caller,
    which then does it once for every execution it ends in the transaction.
    """
    sources = _check(to, allowed_from)
    now = utcnow()
    exec_values = _execution_values(session, to, now, execution_values)
    if session.get_bind().dialect.name != "sqlite":
        values: dict[Any, Any] = {LiveActionDB.status: to.value}
        values.update({getattr(LiveActionDB, k): v for k, v in (liveaction_values or {}).items()})
        values.update({getattr(ExecutionDB, k): v for k, v in exec_values.items()})
        moved = session.execute(
            sa.update(LiveActionDB)
            .where(
                LiveActionDB.id == liveaction_id,
                LiveActionDB.status.in_(sources),
                ExecutionDB.liveaction_id == LiveActionDB.id,
            )
            .values(values)
            .execution_options(synchronize_session=False)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            return False
        if to in COMPLETED and finish:
            finish_executions(session, [liveaction_id])
        return True
    return bool(
        transition_many(
            session,
            liveaction_ids=[liveaction_id],
            to=to,
            allowed_from=allowed_from,
            liveaction_values=liveaction_values,
            execution_values=execution_values,
            finish=finish,
        )
    )


def transition_many(
    session: Session,
    *,
    liveaction_ids: Iterable[str],
    to: ExecutionStatus,
    allowed_from: Iterable[ExecutionStatus],
    liveaction_values: Mapping[str, Any] | None = None,
    execution_values: Mapping[str, Any] | None = None,
    unowned: bool = False,
    finish: bool = True,
) -> list[str]:
    """Move every listed execution that is in ``allowed_from`` to ``to``; return those moved.

    With ``unowned``, only those no runner holds a lease on. Three statements for the whole
    batch: lock the rows that may move, update the live actions, update their executions.
    """
    sources = _check(to, allowed_from)
    ids = list(liveaction_ids)
    if not ids:
        return []
    conditions = [LiveActionDB.id.in_(ids), LiveActionDB.status.in_(sources)]
    if unowned:
        conditions.append(LiveActionDB.lease_owner.is_(None))
    moved = list(session.scalars(sa.select(LiveActionDB.id).where(*conditions).with_for_update()))
    if not moved:
        return []
    session.execute(
        sa.update(LiveActionDB)
        .where(LiveActionDB.id.in_(moved))
        .values(status=to.value, **(liveaction_values or {}))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.update(ExecutionDB)
        .where(ExecutionDB.liveaction_id.in_(moved))
        .values(**_execution_values(session, to, utcnow(), execution_values))
        .execution_options(synchronize_session=False)
    )
    if to in COMPLETED and finish:
        finish_executions(session, moved)
    return moved


def schedule(session: Session, liveaction_id: str) -> bool:
    """``requested`` or ``delayed`` -> ``scheduled``."""
    return transition(
        session, liveaction_id=liveaction_id, to=S.SCHEDULED, allowed_from=(S.REQUESTED, S.DELAYED)
    )


def delay_execution(session: Session, liveaction_id: str) -> bool:
    """``requested`` -> ``delayed`` (a policy or the request's ``delay`` holds it back)."""
    return transition(
        session, liveaction_id=liveaction_id, to=S.DELAYED, allowed_from=(S.REQUESTED,)
    )


def claim(
    session: Session, liveaction_ids: Iterable[str], *, owner: str, lease_seconds: float
) -> list[str]:
    """``scheduled`` (or ``resuming``, a workflow no runner holds) -> ``running`` under a lease
    held by runner ``owner``; return those claimed."""
    expires = utcnow() + timedelta(seconds=lease_seconds)
    return transition_many(
        session,
        liveaction_ids=liveaction_ids,
        to=S.RUNNING,
        allowed_from=(S.SCHEDULED, S.RESUMING),
        liveaction_values={"lease_owner": owner, "lease_expires_at": expires},
        unowned=True,
    )


def renew_leases(session: Session, *, owner: str, lease_seconds: float) -> list[str]:
    """Extend every lease ``owner`` holds; return the live actions it must cancel."""
    session.execute(
        sa.update(LiveActionDB)
        .where(
            LiveActionDB.lease_owner == owner,
            LiveActionDB.status.in_([status.value for status in LEASED]),
        )
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        sa.select(LiveActionDB.id).where(
            LiveActionDB.lease_owner == owner, LiveActionDB.status == S.CANCELING.value
        )
    )
    return [row.id for row in rows]


def shape_result(result: Any, max_bytes: int) -> tuple[Any, int, bool]:
    """Return the result to store, its original size in bytes, and whether it was truncated.

    :class:`EncodedText` in ``result`` is decoded: what is returned is plain JSON."""
    result = plain(result)
    text = json.dumps(result, default=str, ensure_ascii=False)
    size = len(text.encode("utf-8"))
    if size <= max_bytes:
        return result, size, False
    if isinstance(result, dict):
        shrunk = dict(result)
        over = size - max_bytes
        for key in sorted(shrunk, key=lambda k: -len(str(shrunk[k]))):
            value = shrunk[key]
            if isinstance(value, str) and over > 0:
                keep = max(0, len(value) - over - len(_TRUNCATION_NOTE) - 64)
                shrunk[key] = value[:keep] + _TRUNCATION_NOTE
                over -= len(value) - keep
        candidate = json.dumps(shrunk, default=str, ensure_ascii=False)
        if len(candidate.encode("utf-8")) <= max_bytes:
            return shrunk, size, True
    preview = text.encode("utf-8")[: max(0, max_bytes - 256)].decode("utf-8", "ignore")
    return {"truncated": True, "original_size": size, "preview": preview}, size, True


def complete(
    session: Session,
    *,
    liveaction_id: str,
    status: ExecutionStatus,
    result: Any,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    workflow: bool = False,
    context: Mapping[str, Any] | None = None,
    finish: bool = True,
) -> bool:
    """A runner finished: record the final status and result and release the lease.

    A run that ended because it was canceled keeps the cancel request's result
    (``{"message": "Action canceled by user.", "user": ...}``), as StackStorm does; a workflow
    also keeps what its runner reported (its tasks), with the cancel request's fields added.
    ``context`` holds keys to set in the execution's context (``None`` removes one).
    ``finish`` as in :func:`transition`.
    """
    release: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    changed = updated_context(session, liveaction_id, context)
    release.update(changed)
    if status == S.CANCELED and workflow and isinstance(result, dict):
        request = session.scalar(
            sa.select(LiveActionDB.result).where(LiveActionDB.id == liveaction_id)
        )
        result = {**result, **(request if isinstance(request, dict) else {})}
    elif status == S.CANCELED:
        return transition(
            session,
            liveaction_id=liveaction_id,
            to=status,
            allowed_from=LEASED,
            liveaction_values=release,
            execution_values=changed,
            finish=finish,
        )
    staged = None
    if holds_encoded_text(result) and can_stage(session):
        staged = stage_result(session, result, max_result_bytes)
    if staged is not None:
        stored, size, truncated = STAGED_RESULT, staged, False
    else:
        stored, size, truncated = shape_result(result, max_result_bytes)
    # The result is stored once, on the execution: a second copy on the live action would
    # double the statement (and could exceed the server's max_allowed_packet).
    moved = transition(
        session,
        liveaction_id=liveaction_id,
        to=status,
        allowed_from=LEASED,
        liveaction_values=release,
        execution_values={
            "result": stored,
            "result_size": size,
            "result_truncated": truncated,
            **changed,
        },
        finish=finish,
    )
    if staged is not None:
        clear_staged(session)
    return moved


@dataclass(frozen=True)
class FinalOutcome:
    """A runner's final outcome to record with others (:func:`complete_many`)."""

    liveaction_id: str
    status: ExecutionStatus
    result: Any


# complete_many writes results of at most this many bytes in one statement together; a larger
# one is written alone, and a statement holds at most BATCHED_RESULT_BYTES of results.
BATCHED_RESULT_LIMIT = 64 * 1024
BATCHED_RESULT_BYTES = 1024 * 1024


def complete_many(
    session: Session,
    outcomes: Sequence[FinalOutcome],
    *,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    finish: bool = True,
) -> list[str]:
    """Record final outcomes as :func:`complete` does, for outcomes that change no context and
    are not cancellations; return the live actions that moved.

    On MariaDB the rows still leased are locked in one statement, then each status's
    executions move together in one multi-table UPDATE whose results are chosen per live
    action (a result over :data:`BATCHED_RESULT_LIMIT` is written alone).
    """
    for outcome in outcomes:
        if outcome.status == S.CANCELED or outcome.status not in COMPLETED:
            raise ValueError(f"complete_many records final outcomes, not {outcome.status}")
    if not outcomes:
        return []
    if len(outcomes) == 1 or session.get_bind().dialect.name == "sqlite":
        # One outcome: its compare-and-set is one statement, the lock and UPDATE two.
        moved_alone = [
            outcome.liveaction_id
            for outcome in outcomes
            if _complete_alone(session, outcome, max_result_bytes)
        ]
        if finish:
            finish_executions(session, moved_alone)
        return moved_alone
    leased = [status.value for status in LEASED]
    moved = set(
        session.scalars(
            sa.select(LiveActionDB.id)
            .where(
                LiveActionDB.id.in_([outcome.liveaction_id for outcome in outcomes]),
                LiveActionDB.status.in_(leased),
            )
            .with_for_update()
        )
    )
    by_status: dict[ExecutionStatus, list[tuple[str, str, int, bool]]] = {}
    recorded: list[str] = []
    for outcome in outcomes:
        if outcome.liveaction_id not in moved:
            continue
        moved.discard(outcome.liveaction_id)  # a second outcome for one live action is ignored
        if holds_encoded_text(outcome.result):
            # Large output: complete() stages it in pieces instead of decoding it whole.
            if _complete_alone(session, outcome, max_result_bytes):
                recorded.append(outcome.liveaction_id)
            continue
        stored, size, truncated = shape_result(outcome.result, max_result_bytes)
        text = json.dumps(stored, default=str, ensure_ascii=False)
        by_status.setdefault(outcome.status, []).append(
            (outcome.liveaction_id, text, size, truncated)
        )
    for status, rows in by_status.items():
        for chunk in _result_chunks(rows):
            _complete_together(session, status, chunk)
            recorded += [row[0] for row in chunk]
    if finish:
        finish_executions(session, recorded)
    return recorded


def _complete_alone(session: Session, outcome: FinalOutcome, max_result_bytes: int) -> bool:
    """Record one outcome with :func:`complete` (its execution not yet finished)."""
    return complete(
        session,
        liveaction_id=outcome.liveaction_id,
        status=outcome.status,
        result=outcome.result,
        max_result_bytes=max_result_bytes,
        finish=False,
    )


def _result_chunks(
    rows: list[tuple[str, str, int, bool]],
) -> Iterable[list[tuple[str, str, int, bool]]]:
    """Rows in groups whose results fit one statement; a large result alone."""
    chunk: list[tuple[str, str, int, bool]] = []
    used = 0
    for row in rows:
        length = len(row[1])
        if length > BATCHED_RESULT_LIMIT:
            yield [row]
            continue
        if chunk and used + length > BATCHED_RESULT_BYTES:
            yield chunk
            chunk, used = [], 0
        chunk.append(row)
        used += length
    if chunk:
        yield chunk


def _complete_together(
    session: Session, status: ExecutionStatus, rows: list[tuple[str, str, int, bool]]
) -> None:
    """One multi-table UPDATE ending these (locked, leased) live actions in ``status``."""
    ids = [row[0] for row in rows]
    by_id = LiveActionDB.id
    values: dict[Any, Any] = {
        LiveActionDB.status: status.value,
        LiveActionDB.lease_owner: None,
        LiveActionDB.lease_expires_at: None,
    }
    values.update(
        {
            getattr(ExecutionDB, key): value
            for key, value in _execution_values(session, status, utcnow(), None).items()
        }
    )
    values[ExecutionDB.result] = sa.case(
        {liveaction_id: text for liveaction_id, text, _, _ in rows}, value=by_id
    )
    values[ExecutionDB.result_size] = sa.case(
        {liveaction_id: size for liveaction_id, _, size, _ in rows}, value=by_id
    )
    values[ExecutionDB.result_truncated] = sa.case(
        {liveaction_id: truncated for liveaction_id, _, _, truncated in rows}, value=by_id
    )
    session.execute(
        sa.update(LiveActionDB)
        .where(by_id.in_(ids), ExecutionDB.liveaction_id == by_id)
        .values(values)
        .execution_options(synchronize_session=False)
    )


def updated_context(
    session: Session, liveaction_id: str, changes: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``{"context": ...}``: the execution's context with ``changes`` applied (a ``None`` value
    removes the key), read under its live action's row lock; empty when nothing changes.

    Every writer of a context locks the live action's row first, so nothing is lost between
    the read and the write (the caller writes it to both rows).
    """
    if not changes:
        return {}
    session.execute(
        sa.select(LiveActionDB.id).where(LiveActionDB.id == liveaction_id).with_for_update()
    )
    current = session.scalar(
        sa.select(ExecutionDB.context).where(ExecutionDB.liveaction_id == liveaction_id)
    )
    context = dict(current or {})
    for key, value in changes.items():
        if value is None:
            context.pop(key, None)
        else:
            context[key] = value
    return {"context": context}


def fail_before_run(session: Session, *, liveaction_id: str, error: str) -> bool:
    """A scheduled or running execution could not start (unknown runner, bad entry point)."""
    result = {"error": error}
    return transition(
        session,
        liveaction_id=liveaction_id,
        to=S.FAILED,
        allowed_from=(S.SCHEDULED, S.RUNNING, S.REQUESTED),
        liveaction_values={"result": result, "lease_owner": None, "lease_expires_at": None},
        execution_values={"result": result},
    )


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel request did: the execution, or StackStorm's refusal message."""

    execution: ExecutionDB
    refused: str | None = None


def cancel_execution(session: Session, execution_id: str, *, user: str) -> CancelOutcome:
    """Cancel at any stage: queued work is canceled at once, running work goes to canceling.

    The live action's row is locked while its status is read and changed, so a scheduler or
    runner moving it at the same moment cannot make the cancel miss. Children are canceled too;
    a workflow in GRACEFUL_CANCEL_RUNNER_TYPES keeps its running children (only those not
    started are canceled).
    """
    execution = get_execution(session, execution_id)
    liveaction_id = execution.liveaction_id or ""
    locked = session.execute(
        sa.select(LiveActionDB.status, LiveActionDB.lease_owner)
        .where(LiveActionDB.id == liveaction_id)
        .with_for_update()
    ).one_or_none()
    status = ExecutionStatus(locked.status if locked else execution.status)
    if status == S.CANCELED:
        return CancelOutcome(execution)
    if status not in CANCELABLE:
        return CancelOutcome(execution, f"Action cannot be canceled. State = {status.value}.")
    result: dict[str, Any] = {"message": "Action canceled by user.", "user": user}
    # Something must see a canceling execution to end it: a runner (or the workflow engine)
    # running it. A paused workflow, a pending inquiry or a resumed workflow no runner has
    # taken yet is canceled at once; a workflow keeps the tasks it recorded.
    held = status in (S.RUNNING, S.PAUSING) or (
        status == S.RESUMING and locked is not None and locked.lease_owner is not None
    )
    workflow = execution.runner_type in WORKFLOW_RUNNER_TYPES
    if not held and workflow and isinstance(execution.result, dict):
        result = {**execution.result, **result}
    moved = transition(
        session,
        liveaction_id=liveaction_id,
        to=S.CANCELING if held else S.CANCELED,
        allowed_from=(status,),
        liveaction_values={"result": result},
        execution_values={"result": result},
    )
    if not moved:
        raise ConflictError(f"execution {execution_id} changed while being canceled; try again")
    _cancel_children(session, execution, user=user)
    session.flush()
    session.refresh(execution)
    return CancelOutcome(execution)


def _cancel_children(session: Session, execution: ExecutionDB, *, user: str) -> None:
    """Pass a cancel down: to every child, or, for a workflow that cancels gracefully, to child
    workflows and children that have not started (running actions finish, as on StackStorm)."""
    children = list(execution.children or [])
    if not children:
        return
    if execution.runner_type not in GRACEFUL_CANCEL_RUNNER_TYPES:
        for child in children:
            cancel_execution(session, child, user=user)
        return
    workflows = set(
        session.scalars(
            sa.select(ExecutionDB.id).where(
                ExecutionDB.id.in_(children),
                ExecutionDB.runner_type.in_(sorted(WORKFLOW_RUNNER_TYPES)),
            )
        )
    )
    for child in children:
        if child in workflows:
            cancel_execution(session, child, user=user)
        else:
            cancel_unstarted(session, child, user=user)


def cancel_unstarted(session: Session, execution_id: str, *, user: str) -> bool:
    """Cancel an execution that has not started (requested, scheduled or delayed); tell whether
    it was canceled. Its live action's row is locked first, so one starting meanwhile runs on."""
    status = session.scalar(
        sa.select(LiveActionDB.status)
        .join(ExecutionDB, ExecutionDB.liveaction_id == LiveActionDB.id)
        .where(ExecutionDB.id == execution_id)
        .with_for_update(of=LiveActionDB)
    )
    if status is None or ExecutionStatus(status) not in NOT_STARTED:
        return False
    return cancel_execution(session, execution_id, user=user).refused is None


def abandon_expired(
    session: Session, *, now: datetime | None = None, limit: int = 500
) -> list[str]:
    """End executions whose runner stopped renewing its lease; return their live action ids."""
    now = now or utcnow()
    rows = session.execute(
        sa.select(LiveActionDB.id, LiveActionDB.status, LiveActionDB.lease_owner)
        .where(
            LiveActionDB.status.in_([status.value for status in LEASED]),
            LiveActionDB.lease_expires_at < now,
        )
        .limit(limit)
    ).all()
    abandoned = []
    for row in rows:
        result = {
            "error": f"the action runner {row.lease_owner} stopped renewing its lease; "
            "execution abandoned"
        }
        if transition(
            session,
            liveaction_id=row.id,
            to=S.ABANDONED,
            allowed_from=(S(row.status),),
            liveaction_values={"result": result, "lease_owner": None, "lease_expires_at": None},
            execution_values={"result": result},
        ):
            abandoned.append(row.id)
    return abandoned
