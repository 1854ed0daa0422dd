"""Enforcing ``action.concurrency`` and ``action.concurrency.attr`` when the scheduler hands
work to the runners.

The count of an action's in-flight executions and the decision are made while the policy's row
is locked (``SELECT ... FOR UPDATE``), so any number of schedulers, feeding any number of
runners, never let more than ``threshold`` run at once. ``action.concurrency.attr`` counts only
the in-flight executions whose parameters named in ``attributes`` equal the candidate's (the
attributes the candidate was given, as StackStorm's ``concurrency_by_attr`` filters).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.executions.models import LiveActionDB
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.policies.models import PolicyDB

CONCURRENCY = "action.concurrency"
CONCURRENCY_BY_ATTRIBUTE = "action.concurrency.attr"
IN_FLIGHT = (
    ExecutionStatus.SCHEDULED.value,
    ExecutionStatus.RUNNING.value,
    ExecutionStatus.CANCELING.value,
)


@dataclass(frozen=True)
class ConcurrencyPolicy:
    """At most ``threshold`` executions of ``action_ref`` in flight (per value of
    ``attributes``, when there are any); the rest wait (``delay``) or are canceled."""

    policy_id: str
    policy_ref: str
    action_ref: str
    threshold: int
    action: str
    attributes: tuple[str, ...] | None = None


def concurrency_policies(
    session: Session, action_refs: Iterable[str]
) -> dict[str, list[ConcurrencyPolicy]]:
    """Return the enabled concurrency policies of each of ``action_refs`` that has any."""
    refs = sorted(set(action_refs))
    if not refs:
        return {}
    rows = session.scalars(
        sa.select(PolicyDB)
        .where(
            PolicyDB.resource_ref.in_(refs),
            PolicyDB.policy_type.in_((CONCURRENCY, CONCURRENCY_BY_ATTRIBUTE)),
            PolicyDB.enabled.is_(True),
        )
        .order_by(PolicyDB.ref)
    )
    found: dict[str, list[ConcurrencyPolicy]] = {}
    for row in rows:
        parameters = row.parameters or {}
        attributes = None
        if row.policy_type == CONCURRENCY_BY_ATTRIBUTE:
            attributes = tuple(str(name) for name in parameters.get("attributes") or [])
        found.setdefault(row.resource_ref, []).append(
            ConcurrencyPolicy(
                policy_id=row.id,
                policy_ref=row.ref,
                action_ref=row.resource_ref,
                threshold=int(parameters.get("threshold", 1)),
                action=str(parameters.get("action", "delay")),
                attributes=attributes,
            )
        )
    return found


def admit(
    session: Session, policy: ConcurrencyPolicy, parameters: Mapping[str, Any] | None = None
) -> bool:
    """Lock the policy and tell whether one more execution of its action (with
    ``parameters``) may start now."""
    session.execute(sa.select(PolicyDB.id).where(PolicyDB.id == policy.policy_id).with_for_update())
    in_flight = sa.select(LiveActionDB.parameters).where(
        LiveActionDB.action == policy.action_ref, LiveActionDB.status.in_(IN_FLIGHT)
    )
    if policy.attributes is None:
        count = session.scalar(sa.select(sa.func.count()).select_from(in_flight.subquery()))
        return int(count or 0) < policy.threshold
    wanted = {
        name: value for name, value in (parameters or {}).items() if name in policy.attributes
    }
    same = 0
    for (others,) in session.execute(in_flight):
        others = others or {}
        if all(name in others and others[name] == value for name, value in wanted.items()):
            same += 1
    return same < policy.threshold
