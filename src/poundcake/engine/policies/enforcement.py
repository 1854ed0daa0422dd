"""Enforcing ``action.concurrency`` when the scheduler hands work to the runners.

The count of an action's in-flight executions and the decision are made while the policy's row
is locked (``SELECT ... FOR UPDATE``), so any number of schedulers, feeding any number of
runners, never let more than ``threshold`` run at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.executions.models import LiveActionDB
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.policies.models import PolicyDB

CONCURRENCY = "action.concurrency"
IN_FLIGHT = (
    ExecutionStatus.SCHEDULED.value,
    ExecutionStatus.RUNNING.value,
    ExecutionStatus.CANCELING.value,
)


@dataclass(frozen=True)
class ConcurrencyPolicy:
    """At most ``threshold`` executions of ``action_ref`` in flight; the rest wait or cancel."""

    policy_id: str
    action_ref: str
    threshold: int
    action: str


def concurrency_policies(
    session: Session, action_refs: Iterable[str]
) -> dict[str, ConcurrencyPolicy]:
    """Return the enabled concurrency policy of each of ``action_refs`` that has one."""
    refs = sorted(set(action_refs))
    if not refs:
        return {}
    rows = session.scalars(
        sa.select(PolicyDB).where(
            PolicyDB.resource_ref.in_(refs),
            PolicyDB.policy_type == CONCURRENCY,
            PolicyDB.enabled.is_(True),
        )
    )
    return {
        row.resource_ref: ConcurrencyPolicy(
            policy_id=row.id,
            action_ref=row.resource_ref,
            threshold=int((row.parameters or {}).get("threshold", 1)),
            action=str((row.parameters or {}).get("action", "delay")),
        )
        for row in rows
    }


def admit(session: Session, policy: ConcurrencyPolicy) -> bool:
    """Lock the policy and tell whether one more execution of its action may start now."""
    session.execute(sa.select(PolicyDB.id).where(PolicyDB.id == policy.policy_id).with_for_update())
    in_flight = session.scalar(
        sa.select(sa.func.count())
        .select_from(LiveActionDB)
        .where(LiveActionDB.action == policy.action_ref, LiveActionDB.status.in_(IN_FLIGHT))
    )
    return int(in_flight or 0) < policy.threshold
