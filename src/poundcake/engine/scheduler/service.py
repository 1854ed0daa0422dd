"""Scheduling decisions: what moves from requested (or delayed) to scheduled, in batches.

:func:`schedule_batch` decides for a set of live actions in one transaction: a live action whose
``delay`` has not passed, or whose action's concurrency policy is full, is ``delayed`` (or
canceled if the policy says so); the rest are ``scheduled``. :func:`due_for_retry` finds the work
the sweep must look at again: requested work whose message was lost, and delayed work;
:func:`unclaimed` finds scheduled work the runners never claimed, and resumed workflows no runner
took up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.executions.models import ExecutionDB, LiveActionDB
from poundcake.engine.executions.service import (
    delay_execution,
    schedule,
    transition,
    transition_many,
    utcnow,
)
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.messaging import ORQUESTA_RUNNER_TYPE
from poundcake.engine.policies.enforcement import ConcurrencyPolicy, admit, concurrency_policies

S = ExecutionStatus


@dataclass
class BatchDecision:
    """Live action ids by what happened to them."""

    scheduled: list[str] = field(default_factory=list)
    delayed: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)


def _delay_pending(row: Any, now: datetime) -> bool:
    if not row.delay:
        return False
    return bool(row.start_timestamp + timedelta(milliseconds=row.delay) > now)


def schedule_batch(session: Session, liveaction_ids: list[str]) -> BatchDecision:
    """Decide for every live action in ``liveaction_ids`` that is requested or delayed."""
    decision = BatchDecision()
    if not liveaction_ids:
        return decision
    rows = session.execute(
        sa.select(
            LiveActionDB.id,
            LiveActionDB.action,
            LiveActionDB.status,
            LiveActionDB.delay,
            LiveActionDB.start_timestamp,
        )
        .where(
            LiveActionDB.id.in_(liveaction_ids),
            LiveActionDB.status.in_([S.REQUESTED.value, S.DELAYED.value]),
        )
        .order_by(LiveActionDB.id)
    ).all()
    policies = concurrency_policies(session, (row.action for row in rows))
    now = utcnow()
    free = [row.id for row in rows if row.action not in policies and not _delay_pending(row, now)]
    decision.scheduled.extend(
        transition_many(
            session, liveaction_ids=free, to=S.SCHEDULED, allowed_from=(S.REQUESTED, S.DELAYED)
        )
    )
    for row in rows:
        if row.id in free:
            continue
        if _delay_pending(row, now):
            if row.status == S.REQUESTED.value and delay_execution(session, row.id):
                decision.delayed.append(row.id)
            continue
        refused_by = _refusing_policy(session, row, policies.get(row.action) or [])
        if refused_by is None:
            if schedule(session, row.id):
                decision.scheduled.append(row.id)
        elif refused_by.action == "cancel":
            if _cancel(session, row, refused_by):
                decision.canceled.append(row.id)
        elif row.status == S.REQUESTED.value and delay_execution(session, row.id):
            decision.delayed.append(row.id)
    session.flush()
    return decision


def unrestricted(session: Session, action_refs: Iterable[str]) -> set[str]:
    """Those of ``action_refs`` no concurrency policy holds back: an execution of one of them
    (without a delay) is scheduled as soon as it is requested."""
    refs = set(action_refs)
    return refs - set(concurrency_policies(session, refs))


def _refusing_policy(
    session: Session, row: Any, policies: list[ConcurrencyPolicy]
) -> ConcurrencyPolicy | None:
    """The first of the action's concurrency policies that holds this execution back."""
    parameters = None
    for policy in policies:
        if policy.attributes is not None and parameters is None:
            parameters = session.scalar(
                sa.select(LiveActionDB.parameters).where(LiveActionDB.id == row.id)
            )
        if not admit(session, policy, parameters):
            return policy
    return None


def _cancel(session: Session, row: Any, policy: ConcurrencyPolicy) -> bool:
    result = {
        "message": f"Canceled by policy {policy.policy_ref}: {policy.action_ref} is at its "
        "concurrency limit."
    }
    return transition(
        session,
        liveaction_id=row.id,
        to=S.CANCELED,
        allowed_from=(S(row.status),),
        liveaction_values={"result": result},
        execution_values={"result": result},
    )


def due_for_retry(session: Session, *, lost_after: float, limit: int) -> list[str]:
    """Requested work older than ``lost_after`` seconds (its message was lost) and delayed work."""
    cutoff = utcnow() - timedelta(seconds=lost_after)
    requested = sa.select(LiveActionDB.id).where(
        LiveActionDB.status == S.REQUESTED.value, LiveActionDB.start_timestamp < cutoff
    )
    delayed = sa.select(LiveActionDB.id).where(LiveActionDB.status == S.DELAYED.value)
    ids = list(session.scalars(requested.order_by(LiveActionDB.start_timestamp).limit(limit)))
    ids += list(session.scalars(delayed.order_by(LiveActionDB.start_timestamp).limit(limit)))
    return ids


@dataclass(frozen=True)
class WorkItem:
    """What a work message names: the live action, its execution, whether it is a workflow,
    and its runner type (Orquesta workflows go to the workflow engines)."""

    liveaction_id: str
    execution_id: str
    workflow: bool
    runner_type: str | None = None


def unclaimed(session: Session, *, older_than: float, limit: int) -> list[WorkItem]:
    """Scheduled work no runner claimed for ``older_than`` seconds, and workflows resumed that
    long ago that no runner took up."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    rows = session.execute(
        sa.select(
            LiveActionDB.id,
            ExecutionDB.id.label("execution_id"),
            LiveActionDB.action_is_workflow,
            ExecutionDB.runner_type,
        )
        .join(ExecutionDB, ExecutionDB.liveaction_id == LiveActionDB.id)
        .where(LiveActionDB.status == S.SCHEDULED.value, LiveActionDB.start_timestamp < cutoff)
        .order_by(LiveActionDB.start_timestamp)
        .limit(limit)
    ).all()
    items = [
        WorkItem(row.id, row.execution_id, bool(row.action_is_workflow), row.runner_type)
        for row in rows
    ]
    return items + _resumed_unclaimed(session, cutoff, limit)


def _resumed_unclaimed(session: Session, cutoff: datetime, limit: int) -> list[WorkItem]:
    # The resume's time is the last entry of the execution's log (live actions keep no
    # update time); few executions are resuming at once, so the log is read here. Orquesta
    # workflows resume in the workflow engines, which find their own.
    rows = session.execute(
        sa.select(LiveActionDB.id, ExecutionDB.id.label("execution_id"), ExecutionDB.log)
        .join(ExecutionDB, ExecutionDB.liveaction_id == LiveActionDB.id)
        .where(
            LiveActionDB.status == S.RESUMING.value,
            LiveActionDB.lease_owner.is_(None),
            ExecutionDB.runner_type != ORQUESTA_RUNNER_TYPE,
        )
        .limit(limit)
    ).all()
    found = []
    for row in rows:
        changed = _last_change(row.log)
        if changed is None or changed < cutoff:
            found.append(WorkItem(row.id, row.execution_id, True))
    return found


def _last_change(log: Any) -> datetime | None:
    if not isinstance(log, list) or not log or not isinstance(log[-1], dict):
        return None
    try:
        return datetime.fromisoformat(str(log[-1].get("timestamp")))
    except ValueError:
        return None


def work_items(session: Session, liveaction_ids: list[str]) -> dict[str, WorkItem]:
    """The work message of each live action, by live action id."""
    if not liveaction_ids:
        return {}
    rows = session.execute(
        sa.select(
            ExecutionDB.liveaction_id,
            ExecutionDB.id,
            LiveActionDB.action_is_workflow,
            ExecutionDB.runner_type,
        )
        .join(LiveActionDB, LiveActionDB.id == ExecutionDB.liveaction_id)
        .where(ExecutionDB.liveaction_id.in_(liveaction_ids))
    ).all()
    return {
        row.liveaction_id: WorkItem(
            row.liveaction_id, row.id, bool(row.action_is_workflow), row.runner_type
        )
        for row in rows
        if row.liveaction_id
    }
