"""Following dispatched alerts through the engine to the end of their remediation.

An alert is followed while the engine still owes an answer: it has a trigger instance and is
``received``, ``matched`` or ``remediating``, or it was resolved meanwhile and carries
:data:`~poundcake.remediation.alerts.lifecycle.RESOLVED_WHILE_REMEDIATING`. Each pass, per alert:

1. :func:`~poundcake.remediation.tracking.observe.observe` asks the engine (no transaction
   open): the trigger instance's status, then its rule enforcements, then the executions they
   started.
2. :func:`apply_observation` writes it in one transaction, the alert row locked: one execution
   extension row per step execution (upserted on ``st2_execution_id``), the alert's CAB and
   workflow, and its state: ``unmatched`` when the rules engine is done with the instance and no
   rule took it; ``matched`` -> ``remediating`` while the work runs; ``remediated`` or ``failed``
   (the reason names the step) when it ends. A resolved alert keeps ``resolved``; its workflow is
   canceled if still running and the outcome goes into ``state_reason``, which ends the following.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.engine.public import (
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
    EngineApi,
    EngineUnavailableError,
    cancel_workflow,
)
from poundcake.remediation.tracking.models import ExecutionExtension
from poundcake.remediation.tracking.observe import FollowedAlert, Observation, StepRecord, observe
from poundcake.remediation.tracking.run_safety import (
    resume_abandoned,
    retry_or_fail,
    verification_start,
)

logger = logging.getLogger(__name__)

CAB_PACK = "poundcake_cabs"
FOLLOW_BATCH = 200
SUCCEEDED = "succeeded"
NOT_STARTED = frozenset({"requested", "scheduled", "delayed"})

Kind = Literal["unmatched", "failed", "tracked"]


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


@dataclass(frozen=True)
class EngineWork:
    """What following an alert asks of the engine once its observation is committed."""

    # A workflow to cancel (the alert resolved while it ran).
    cancel: str | None = None
    # An abandoned workflow to resume (crash-safe retries), and whether an earlier request for
    # it may have reached the engine (then it is looked for before asking again).
    resume: str | None = None
    look_first: bool = False


def apply_observation(session: Session, alert_id: str, seen: Observation) -> EngineWork:
    """Record an observation; return what to ask of the engine after the commit."""
    alert = lock_alert(session, alert_id)
    if alert is None or not is_followed(alert):
        return EngineWork()
    work = _apply(session, alert, seen)
    return work if isinstance(work, EngineWork) else EngineWork(cancel=work)


def _apply(session: Session, alert: Alert, seen: Observation) -> str | EngineWork | None:
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
    if seen.finished and seen.succeeded:
        transition(
            session,
            alert.id,
            AlertState.REMEDIATED,
            {state},
            state_reason=seen.reason,
            **verification_start(session, alert),
        )
    elif seen.finished:
        return _failed_or_resumed(session, alert, state, seen)
    elif state is AlertState.MATCHED and seen.started:
        transition(session, alert.id, AlertState.REMEDIATING, {state})
    return None


def _failed_or_resumed(
    session: Session, alert: Alert, state: AlertState, seen: Observation
) -> EngineWork | None:
    """End the run ``failed``, or resume it when only abandoned work failed and the CAB allows."""
    decision = retry_or_fail(session, alert, seen)
    if decision.fail_reason is not None:
        transition(session, alert.id, AlertState.FAILED, {state}, state_reason=decision.fail_reason)
        return None
    if decision.resume is None:
        return None
    return EngineWork(resume=decision.resume, look_first=decision.look_first)


def follow_alert(
    *, sessions: sessionmaker[Session], engine_api: EngineApi, alert: FollowedAlert
) -> bool:
    """Follow one alert a step further; tell whether the engine had news."""
    seen = observe(engine_api, alert)
    if seen is None:
        return False
    work = in_transaction(sessions, lambda session: apply_observation(session, alert.id, seen))
    if work.cancel:
        cancel_workflow(engine_api, work.cancel)
    if work.resume:
        resume_abandoned(
            sessions=sessions,
            engine_api=engine_api,
            alert_id=alert.id,
            abandoned=work.resume,
            look_first=work.look_first,
        )
    return True


def follow_remediations(
    *,
    sessions: sessionmaker[Session],
    engine_api: EngineApi,
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
            if follow_alert(sessions=sessions, engine_api=engine_api, alert=alert):
                summary.changed += 1
        except (EngineUnavailableError, sa.exc.OperationalError, sa.exc.InterfaceError):
            raise
        except Exception:
            logger.exception("Following alert %s failed", alert.id)
            summary.failed.append(alert.id)
        finally:
            request_id_var.reset(token)
    return summary
