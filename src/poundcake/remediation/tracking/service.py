"""Following dispatched alerts through the engine to the end of their remediation.

An alert is followed while the engine still owes an answer: it has a trigger instance and is
``received``, ``matched`` or ``remediating``, or it was resolved meanwhile and carries
:data:`~poundcake.remediation.alerts.lifecycle.RESOLVED_WHILE_REMEDIATING`. Each pass, per alert:

1. :func:`observe` asks the engine (no transaction open): the trigger instance's status, then its
   rule enforcements, then the executions they started. A CAB's enforcement (rule
   ``poundcake_cabs.<cab>``) names the workflow; its steps come from the workflow's result
   (``steps``) and, while it runs, from its children. Other rules' executions are steps of their own
   (``step_order`` 0).
2. :func:`apply_observation` writes it in one transaction, the alert row locked: one execution
   extension row per step execution (upserted on ``st2_execution_id``), the alert's CAB and
   workflow, and its state: ``unmatched`` when the rules engine is done with the instance and no
   rule took it; ``matched`` -> ``remediating`` while the work runs; ``remediated`` or ``failed``
   (the reason names the step) when it ends. A resolved alert keeps ``resolved``; its workflow is
   canceled if still running and the outcome goes into ``state_reason``, which ends the following.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.engine.public import (
    CANCELABLE_STATUSES,
    COMPLETED_STATUSES,
    FAILED_STATUSES,
    ExecutionDB,
)
from poundcake.ids import new_id
from poundcake.logging import request_id_var
from poundcake.remediation.alerts.lifecycle import (
    IN_PROGRESS,
    RESOLVED_WHILE_REMEDIATING,
    AlertState,
    lock_alert,
    transition,
)
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.engine_api import (
    EVALUATED_INSTANCE_STATUSES,
    EngineApi,
    EngineError,
    EngineNotFoundError,
    EngineUnavailableError,
)
from poundcake.remediation.tracking.models import ExecutionExtension

logger = logging.getLogger(__name__)

CAB_PACK = "poundcake_cabs"
FOLLOW_BATCH = 200
SUCCEEDED = "succeeded"
NOT_STARTED = frozenset({"requested", "scheduled", "delayed"})

Kind = Literal["unmatched", "failed", "tracked"]


@dataclass(frozen=True)
class StepRecord:
    """One execution started for an alert, as the engine reports it."""

    execution_id: str | None
    step_order: int = 0
    name: str | None = None
    action_ref: str | None = None
    status: str | None = None
    expected_result: Any = None
    result_matched: bool | None = None
    request_id: str | None = None
    cab_name: str | None = None
    # Why the step's result did not match (the runner's ``mismatches``), for the reason.
    detail: str | None = None

    def describe(self) -> str:
        """``step 2 "restart" (core.local)`` for a CAB step, the action for other executions."""
        if self.cab_name is None:
            return f"execution {self.execution_id} of {self.action_ref or 'an action'}"
        label = f'step {self.step_order} "{self.name}"' if self.name else f"step {self.step_order}"
        return f"{label} ({self.action_ref})" if self.action_ref else label


@dataclass(frozen=True)
class Observation:
    """What the engine says about one dispatched alert at one moment."""

    kind: Kind
    reason: str | None = None
    cab_name: str | None = None
    workflow_execution_id: str | None = None
    workflow_status: str | None = None
    steps: tuple[StepRecord, ...] = ()
    finished: bool = True
    succeeded: bool = False
    started: bool = False

    @property
    def cancelable(self) -> bool:
        """Tell whether the CAB workflow still runs and may be canceled."""
        return self.workflow_status in CANCELABLE_STATUSES


@dataclass(frozen=True)
class FollowedAlert:
    """The columns of a followed alert that the engine is asked about."""

    id: str
    trigger_instance_id: str
    workflow_execution_id: str | None
    request_id: str


@dataclass
class FollowSummary:
    """What one pass did."""

    looked: int = 0
    changed: int = 0
    failed: list[str] = field(default_factory=list)
    # Where the next pass goes on when this one stopped at its limit; None: from the start.
    cursor: str | None = None


# --- which alerts -----------------------------------------------------------------------------


def _followed_clause() -> sa.ColumnElement[bool]:
    return sa.and_(
        Alert.trigger_instance_id.is_not(None),
        sa.or_(
            Alert.state.in_([state.value for state in IN_PROGRESS]),
            sa.and_(
                Alert.state == AlertState.RESOLVED.value,
                Alert.state_reason == RESOLVED_WHILE_REMEDIATING,
            ),
        ),
    )


def is_followed(alert: Alert) -> bool:
    """Tell whether the engine still owes an answer about ``alert``."""
    if alert.trigger_instance_id is None:
        return False
    if alert.state in IN_PROGRESS:
        return True
    return alert.state == AlertState.RESOLVED and alert.state_reason == RESOLVED_WHILE_REMEDIATING


def followed_alerts(
    session: Session, limit: int = FOLLOW_BATCH, after: str | None = None
) -> list[FollowedAlert]:
    """Up to ``limit`` followed alerts in id order, from after ``after`` (a pass's cursor)."""
    query = (
        sa.select(
            Alert.id, Alert.trigger_instance_id, Alert.workflow_execution_id, Alert.request_id
        )
        .where(_followed_clause())
        .order_by(Alert.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Alert.id > after)
    rows = session.execute(query)
    return [FollowedAlert(row[0], str(row[1]), row[2], row[3]) for row in rows]


def followed_alert(session: Session, alert_id: str) -> FollowedAlert | None:
    """The alert ``alert_id`` if the engine still owes an answer about it."""
    row = session.execute(
        sa.select(
            Alert.id, Alert.trigger_instance_id, Alert.workflow_execution_id, Alert.request_id
        ).where(_followed_clause(), Alert.id == alert_id)
    ).first()
    return FollowedAlert(row[0], str(row[1]), row[2], row[3]) if row is not None else None


# --- what the engine says ---------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _order(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return default


def _context(document: Mapping[str, Any]) -> Mapping[str, Any]:
    context = document.get("context")
    return context if isinstance(context, Mapping) else {}


def _action_ref(document: Mapping[str, Any]) -> str | None:
    action = document.get("action")
    return _text(action.get("ref")) if isinstance(action, Mapping) else None


def result_steps(workflow: Mapping[str, Any], cab_name: str) -> list[StepRecord]:
    """The steps a CAB workflow reports in its result (``result.steps``); a step that never
    started has no ``execution_id``."""
    result = workflow.get("result")
    steps = result.get("steps") if isinstance(result, Mapping) else None
    if not isinstance(steps, list):
        return []
    request_id = _text(_context(workflow).get("request_id"))
    records = []
    for index, step in enumerate(steps, start=1):
        if not isinstance(step, Mapping):
            continue
        matched = step.get("result_matched")
        mismatches = step.get("mismatches")
        detail = None
        if isinstance(mismatches, list) and mismatches:
            detail = "; ".join(str(item) for item in mismatches[:3])
        records.append(
            StepRecord(
                execution_id=_text(step.get("execution_id")),
                step_order=_order(step.get("step_order"), index),
                name=_text(step.get("name")),
                action_ref=_text(step.get("action_ref")),
                status=_text(step.get("status")),
                expected_result=step.get("expected_result"),
                result_matched=matched if isinstance(matched, bool) else None,
                request_id=request_id,
                cab_name=cab_name,
                detail=detail,
            )
        )
    return records


def child_steps(children: Iterable[Mapping[str, Any]], cab_name: str) -> list[StepRecord]:
    """The steps of a CAB workflow as its child executions show them (while it runs)."""
    records = []
    for index, child in enumerate(children, start=1):
        context = _context(child)
        records.append(
            StepRecord(
                execution_id=str(child["id"]),
                step_order=_order(context.get("step_order"), index),
                name=_text(context.get("step")) or _text(context.get("cab_step")),
                action_ref=_action_ref(child),
                status=_text(child.get("status")),
                request_id=_text(context.get("request_id")),
                cab_name=cab_name,
            )
        )
    return records


def _merge(primary: list[StepRecord], secondary: list[StepRecord]) -> list[StepRecord]:
    """Steps with an execution: ``primary``'s values, completed by ``secondary``'s."""
    merged = {step.execution_id: step for step in secondary if step.execution_id}
    for step in primary:
        if step.execution_id is None:
            continue
        other = merged.get(step.execution_id)
        if other is None:
            merged[step.execution_id] = step
            continue
        merged[step.execution_id] = replace(
            step,
            **{
                name: getattr(other, name)
                for name in ("name", "action_ref", "status", "expected_result", "result_matched")
                if getattr(step, name) is None
            },
        )
    return sorted(merged.values(), key=lambda step: (step.step_order, step.execution_id or ""))


def _step_failure(steps: Iterable[StepRecord]) -> str | None:
    """Name the first step that failed or did not match, else the first one canceled."""
    ordered = sorted(steps, key=lambda step: step.step_order)
    for step in ordered:
        failure = None
        if step.status in FAILED_STATUSES:
            failure = f"{step.describe()} {step.status}"
        elif step.result_matched is False:
            failure = f"{step.describe()} returned an unexpected result"
        if failure:
            return f"{failure}: {step.detail}" if step.detail else failure
    for step in ordered:
        if step.status == "canceled":
            return f"{step.describe()} was canceled"
    return None


def _observe_cab(
    engine: EngineApi, enforcement: Mapping[str, Any], cab_name: str
) -> tuple[str | None, str | None, list[StepRecord], str | None]:
    """The CAB workflow: its id, status, steps, and why it failed (if it did)."""
    workflow_id = _text(enforcement.get("execution_id"))
    if workflow_id is None:
        why = _text(enforcement.get("failure_reason")) or "its rule enforcement failed"
        return None, None, [], f'CAB "{cab_name}" did not start: {why}'
    workflow = engine.get_execution(workflow_id)
    status = _text(workflow.get("status"))
    from_result = result_steps(workflow, cab_name)
    if status in COMPLETED_STATUSES and from_result:
        steps = _merge(from_result, [])
    else:
        steps = _merge(child_steps(engine.children(workflow_id), cab_name), from_result)
    failure = None
    if status in COMPLETED_STATUSES and status != SUCCEEDED:
        result = workflow.get("result")
        error = _text(result.get("error")) if isinstance(result, Mapping) else None
        why = (
            _step_failure(from_result or steps)
            or error
            or f"workflow execution {workflow_id} {status}"
        )
        failure = f'CAB "{cab_name}": {why}'
    return workflow_id, status, steps, failure


def _observe_rule(engine: EngineApi, enforcement: Mapping[str, Any]) -> StepRecord | str:
    """A user's rule on poundcake.alert: its execution as a step, or why it did not start."""
    rule = enforcement.get("rule")
    rule_ref = _text(rule.get("ref")) if isinstance(rule, Mapping) else None
    execution_id = _text(enforcement.get("execution_id"))
    if execution_id is None:
        failure = _text(enforcement.get("failure_reason")) or "its rule enforcement failed"
        return f'rule "{rule_ref}" did not start: {failure}'
    execution = engine.get_execution(execution_id)
    status = _text(execution.get("status"))
    return StepRecord(
        execution_id=execution_id,
        action_ref=_action_ref(execution),
        status=status,
        result_matched=(status == SUCCEEDED) if status in COMPLETED_STATUSES else None,
        request_id=_text(_context(execution).get("request_id")),
    )


def _cab_name(enforcement: Mapping[str, Any]) -> str | None:
    rule = enforcement.get("rule")
    ref = _text(rule.get("ref")) if isinstance(rule, Mapping) else None
    ref = ref or _text(enforcement.get("rule_ref"))
    if ref is None or not ref.startswith(f"{CAB_PACK}."):
        return None
    return ref.split(".", 1)[1]


def observe(engine: EngineApi, alert: FollowedAlert) -> Observation | None:
    """Ask the engine where an alert's remediation is; None while the rules engine is at it."""
    instance_id = alert.trigger_instance_id
    try:
        instance = engine.get_trigger_instance(instance_id)
    except EngineNotFoundError:
        return Observation("failed", f"trigger instance {instance_id} no longer exists")
    status = instance.get("status")
    if status not in EVALUATED_INSTANCE_STATUSES:
        return None
    # Enforcements are read after the status: the rules engine commits them together.
    enforcements = engine.rule_enforcements(instance_id)
    if not enforcements:
        if status == "processed":
            return Observation("unmatched", "no CAB or rule matched the alert")
        return Observation(
            "failed", f"the engine could not evaluate trigger instance {instance_id}"
        )
    try:
        return _observe_enforcements(engine, enforcements)
    except EngineNotFoundError as error:
        return Observation("failed", f"an execution of the remediation no longer exists ({error})")


def _observe_enforcements(engine: EngineApi, enforcements: list[dict[str, Any]]) -> Observation:
    cab_name: str | None = None
    workflow_id: str | None = None
    workflow_status: str | None = None
    steps: list[StepRecord] = []
    failures: list[str] = []
    statuses: list[str | None] = []
    for enforcement in enforcements:
        name = _cab_name(enforcement)
        if name is not None and cab_name is None:
            # The first CAB is the episode's remediation; any other enforcement is followed
            # as an execution of its own.
            cab_name = name
            workflow_id, workflow_status, cab_steps, failure = _observe_cab(
                engine, enforcement, name
            )
            steps.extend(cab_steps)
            if workflow_id is not None:
                statuses.append(workflow_status)
        else:
            observed = _observe_rule(engine, enforcement)
            if isinstance(observed, str):
                failures.append(observed)
                continue
            steps.append(observed)
            statuses.append(observed.status)
            failure = None
            if observed.status in COMPLETED_STATUSES and observed.status != SUCCEEDED:
                failure = f"{observed.describe()} {observed.status}"
        if failure:
            failures.append(failure)
    finished = all(status in COMPLETED_STATUSES for status in statuses)
    succeeded = finished and not failures
    reason: str | None = "; ".join(failures) or None
    if succeeded:
        reason = f'CAB "{cab_name}" succeeded' if cab_name else "every rule's execution succeeded"
    return Observation(
        "tracked",
        reason=reason,
        cab_name=cab_name,
        workflow_execution_id=workflow_id,
        workflow_status=workflow_status,
        steps=tuple(steps),
        finished=finished,
        succeeded=succeeded,
        started=any(
            status is not None and status not in NOT_STARTED
            for status in [*statuses, *(step.status for step in steps)]
        ),
    )


# --- what PoundCake records -------------------------------------------------------------------


def write_execution_extensions(session: Session, alert: Alert, steps: Iterable[StepRecord]) -> int:
    """Upsert one execution extension row per step execution; return how many changed.

    Executions the engine no longer has (removed by retention) cannot be linked and are skipped.
    """
    steps = [step for step in steps if step.execution_id]
    ids = [step.execution_id for step in steps]
    if not ids:
        return 0
    existing = {
        row.st2_execution_id: row
        for row in session.scalars(
            sa.select(ExecutionExtension).where(ExecutionExtension.st2_execution_id.in_(ids))
        )
    }
    missing = [execution_id for execution_id in ids if execution_id not in existing]
    known = (
        set(session.scalars(sa.select(ExecutionDB.id).where(ExecutionDB.id.in_(missing))))
        if missing
        else set()
    )
    now = utcnow()
    changed = 0
    for step in steps:
        row = existing.get(step.execution_id)
        if row is None:
            if step.execution_id not in known:
                logger.info("Execution %s is not in the engine's tables", step.execution_id)
                continue
            row = ExecutionExtension(
                id=new_id(),
                st2_execution_id=step.execution_id,
                request_id=step.request_id or alert.request_id,
                alert_id=alert.id,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            existing[step.execution_id] = row
            changed += 1
        if _update_row(row, step, now):
            changed += 1
    return changed


def _update_row(row: ExecutionExtension, step: StepRecord, now: Any) -> bool:
    values: dict[str, Any] = {"cab_name": step.cab_name, "step_order": step.step_order}
    for name in ("action_ref", "status", "expected_result", "result_matched"):
        value = getattr(step, name)
        if value is not None:
            values[name] = value
    changes = {name: value for name, value in values.items() if getattr(row, name) != value}
    for name, value in changes.items():
        setattr(row, name, value)
    if changes:
        row.updated_at = now
    return bool(changes)


def apply_observation(session: Session, alert_id: str, seen: Observation) -> str | None:
    """Record an observation; return a workflow execution to cancel (the alert resolved)."""
    alert = lock_alert(session, alert_id)
    if alert is None or not is_followed(alert):
        return None
    write_execution_extensions(session, alert, seen.steps)
    now = utcnow()
    if seen.cab_name and alert.cab_name is None:
        alert.cab_name = seen.cab_name
        alert.updated_at = now
    if seen.workflow_execution_id and alert.workflow_execution_id is None:
        alert.workflow_execution_id = seen.workflow_execution_id
        alert.updated_at = now
    state = AlertState(alert.state)
    if state is AlertState.RESOLVED:
        if seen.finished:
            alert.state_reason = f"resolved; {seen.reason or 'the remediation ended'}"
            alert.updated_at = now
        return seen.workflow_execution_id if seen.cancelable else None
    if seen.kind == "unmatched":
        if state is AlertState.RECEIVED:
            transition(session, alert.id, AlertState.UNMATCHED, {state}, state_reason=seen.reason)
        return None
    if seen.kind == "failed":
        transition(session, alert.id, AlertState.FAILED, {state}, state_reason=seen.reason)
        return None
    if state is AlertState.RECEIVED:
        transition(session, alert.id, AlertState.MATCHED, {state}, state_reason=None)
        state = AlertState.MATCHED
    if seen.finished:
        target = AlertState.REMEDIATED if seen.succeeded else AlertState.FAILED
        transition(session, alert.id, target, {state}, state_reason=seen.reason)
    elif state is AlertState.MATCHED and seen.started:
        transition(session, alert.id, AlertState.REMEDIATING, {state})
    return None


def follow_alert(
    *, sessions: sessionmaker[Session], engine: EngineApi, alert: FollowedAlert
) -> bool:
    """Follow one alert a step further; tell whether the engine had news."""
    seen = observe(engine, alert)
    if seen is None:
        return False
    to_cancel = in_transaction(sessions, lambda session: apply_observation(session, alert.id, seen))
    if to_cancel:
        cancel_workflow(engine, to_cancel)
    return True


def cancel_workflow(engine: EngineApi, execution_id: str) -> None:
    """Ask the engine to cancel a workflow; a failure is left to the next pass."""
    try:
        answer = engine.cancel_execution(execution_id)
    except EngineError as error:
        logger.warning("Could not cancel workflow execution %s: %s", execution_id, error)
        return
    if answer.get("faultstring"):
        logger.info("Workflow execution %s: %s", execution_id, answer["faultstring"])
    else:
        logger.info("Canceled workflow execution %s: its alert resolved", execution_id)


def follow_remediations(
    *,
    sessions: sessionmaker[Session],
    engine: EngineApi,
    limit: int = FOLLOW_BATCH,
    after: str | None = None,
) -> FollowSummary:
    """One pass over up to ``limit`` followed alerts, from after ``after``.

    Passes go round the followed alerts by id (``summary.cursor`` says where the next one goes
    on), so none waits behind the others however many there are. An alert whose documents
    cannot be read is logged and skipped (``summary.failed``); an unavailable engine or database
    stops the pass.
    """
    alerts = in_transaction(sessions, lambda session: followed_alerts(session, limit, after))
    summary = FollowSummary(looked=len(alerts))
    if len(alerts) == limit:
        summary.cursor = alerts[-1].id
    for alert in alerts:
        token = request_id_var.set(alert.request_id)
        try:
            if follow_alert(sessions=sessions, engine=engine, alert=alert):
                summary.changed += 1
        except (EngineUnavailableError, sa.exc.OperationalError, sa.exc.InterfaceError):
            raise
        except Exception:
            logger.exception("Following alert %s failed", alert.id)
            summary.failed.append(alert.id)
        finally:
            request_id_var.reset(token)
    return summary
