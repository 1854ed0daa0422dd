"""Verifying a fix: after a CAB succeeds, did the alert resolve? (a CAB's ``verify_within``).

Tracking marks a remediated episode ``verification = pending`` with ``verify_by`` (the end of the
run plus the CAB's ``verify_within``). Each pass of :func:`verify_pending` then ends it:

* ``verified`` when Alertmanager's resolved notification closed the episode (intake and dispatch
  handle it), or, once ``verify_by`` has passed, when Alertmanager's API no longer holds the
  alert as firing;
* ``unverified`` when it still fires at ``verify_by`` (or no Alertmanager URL is configured and
  no resolved notification came). The CAB's ``on_unverified`` then runs another CAB's workflow
  on the alert (recorded as an execution extension row of the episode) or escalates (recorded
  in ``verification_reason`` and counted by ``/metrics``).

The move out of ``pending`` is a compare-and-set, so of two workers only one acts on it; the
``on_unverified`` run is claimed (``follow_up_requested_at``) before it is asked for and recorded
(``follow_up_execution_id``) after, so a worker that dies between the two leaves a claim the
next pass takes over after :data:`FOLLOW_UP_RECOVERY`, looking for the run in the engine first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.engine.public import COMPLETED_STATUSES, ExecutionDB, ExecutionStatus, isoformat
from poundcake.ids import new_id
from poundcake.logging import request_id_var
from poundcake.remediation.alertmanager_api import (
    AlertmanagerClient,
    AlertmanagerUnavailableError,
)
from poundcake.remediation.alerts.lifecycle import AlertState
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.alerts.trigger import Delivery, alert_payload
from poundcake.remediation.cabs.run_safety import ESCALATE
from poundcake.remediation.cabs.service import cab_run_safety
from poundcake.remediation.engine_api import CAB_PACK, ON_UNVERIFIED_FOR
from poundcake.remediation.guards.decisions import record_outcome
from poundcake.remediation.tracking.models import ExecutionExtension

logger = logging.getLogger(__name__)

SUCCEEDED = ExecutionStatus.SUCCEEDED.value
PENDING = "pending"
VERIFIED = "verified"
UNVERIFIED = "unverified"
ESCALATED = "escalated"
BATCH = 100
# An on_unverified run asked for this long ago and never recorded: its asker died.
FOLLOW_UP_RECOVERY = timedelta(seconds=60)


class CabRunner(Protocol):
    """What running an ``on_unverified`` CAB needs from the engine's API."""

    def run_cab(
        self, cab_name: str, alert: dict[str, object], request_id: str, alert_id: str
    ) -> str: ...

    def find_execution(self, action_ref: str, context_key: str, value: str) -> str | None: ...


@dataclass(frozen=True)
class Pending:
    """An episode whose fix waits to be verified."""

    id: str
    state: str
    verify_by: datetime | None
    resolved_at: datetime | None
    cab_name: str | None
    labels: dict[str, str]
    fingerprint: str
    request_id: str


def _pending(session: Session, now: datetime, limit: int) -> list[Pending]:
    rows = session.scalars(
        sa.select(Alert)
        .where(
            Alert.verification == PENDING,
            sa.or_(Alert.state == AlertState.RESOLVED.value, Alert.verify_by <= now),
        )
        .order_by(Alert.verify_by, Alert.id)
        .limit(limit)
    )
    return [
        Pending(
            row.id,
            row.state,
            row.verify_by,
            row.resolved_at,
            row.cab_name,
            dict(row.labels or {}),
            row.fingerprint,
            row.request_id,
        )
        for row in rows
    ]


def _conclude(session: Session, pending: Pending, verification: str, reason: str) -> bool:
    """Move the episode out of ``pending`` and log the outcome; tell whether this caller did."""
    result = session.execute(
        sa.update(Alert)
        .where(Alert.id == pending.id, Alert.verification == PENDING)
        .values(verification=verification, verification_reason=reason, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    record_outcome(
        session,
        alert_id=pending.id,
        request_id=pending.request_id,
        cab_name=pending.cab_name,
        outcome=verification,
        reason="verification",
        detail=reason,
    )
    return True


def _judge(pending: Pending, alertmanager: AlertmanagerClient | None) -> tuple[str, str]:
    """verified or unverified, and why; AlertmanagerUnavailableError leaves it for later."""
    if pending.state == AlertState.RESOLVED.value:
        resolved = isoformat(pending.resolved_at) or "now"
        return VERIFIED, f"the alert resolved after the fix (resolved at {resolved})"
    deadline = isoformat(pending.verify_by)
    if alertmanager is None:
        return UNVERIFIED, f"no resolved notification by {deadline}"
    if alertmanager.is_firing(pending.labels, pending.fingerprint):
        return UNVERIFIED, f"Alertmanager still had the alert firing at {deadline}"
    return VERIFIED, f"Alertmanager no longer had the alert firing at {deadline}"


def _claim_follow_up(session: Session, alert_id: str) -> bool:
    """Take the right to ask for the ``on_unverified`` run: one worker at a time, and again
    only after :data:`FOLLOW_UP_RECOVERY` (its asker died)."""
    now = utcnow()
    result = session.execute(
        sa.update(Alert)
        .where(
            Alert.id == alert_id,
            Alert.follow_up_execution_id.is_(None),
            sa.or_(
                Alert.follow_up_requested_at.is_(None),
                Alert.follow_up_requested_at < now - FOLLOW_UP_RECOVERY,
            ),
        )
        .values(follow_up_requested_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def _payload(session: Session, alert_id: str) -> tuple[dict[str, object], str, bool]:
    """The alert as the CAB gets it, its request, and whether the run was asked for before
    (then it is looked for in the engine first)."""
    alert = session.get(Alert, alert_id)
    assert alert is not None
    delivery = Delivery(alert.request_id, alert.id, None, None)
    asked = alert.follow_up_requested_at is not None
    return alert_payload(alert, delivery), alert.request_id, asked


def _record_follow_up(
    session: Session, alert_id: str, target: str, execution_id: str, request_id: str
) -> None:
    alert = session.get(Alert, alert_id)
    assert alert is not None
    now = utcnow()
    alert.follow_up_execution_id = execution_id
    alert.verification_reason = (
        f'{alert.verification_reason}; on_unverified: CAB "{target}" started as execution '
        f"{execution_id}"
    )
    alert.updated_at = now
    session.add(
        ExecutionExtension(
            id=new_id(),
            st2_execution_id=execution_id,
            request_id=request_id,
            alert_id=alert_id,
            cab_name=target,
            step_order=0,
            action_ref=f"{CAB_PACK}.{target}",
            created_at=now,
            updated_at=now,
        )
    )


def start_follow_up(
    sessions: sessionmaker[Session], engine_api: CabRunner, alert_id: str, target: str
) -> str | None:
    """Run the ``on_unverified`` CAB ``target`` on the alert once; its execution id, or None
    when another worker has it."""
    _, _, asked_before = in_transaction(sessions, lambda session: _payload(session, alert_id))
    if not in_transaction(sessions, lambda session: _claim_follow_up(session, alert_id)):
        return None
    document, request_id, _ = in_transaction(sessions, lambda session: _payload(session, alert_id))
    execution_id = None
    if asked_before:
        action_ref = f"{CAB_PACK}.{target}"
        execution_id = engine_api.find_execution(action_ref, ON_UNVERIFIED_FOR, alert_id)
    if execution_id is None:
        execution_id = engine_api.run_cab(target, document, request_id, alert_id)
    found = execution_id
    in_transaction(
        sessions, lambda session: _record_follow_up(session, alert_id, target, found, request_id)
    )
    logger.info("Alert %s: on_unverified CAB %s runs as %s", alert_id, target, execution_id)
    return execution_id


def _append_reason(session: Session, alert_id: str, addition: str) -> None:
    alert = session.get(Alert, alert_id)
    assert alert is not None
    alert.verification_reason = f"{alert.verification_reason}; {addition}"
    alert.updated_at = utcnow()


def _follow_up(sessions: sessionmaker[Session], engine_api: CabRunner, pending: Pending) -> None:
    """Do what the CAB's ``on_unverified`` says: escalate, or run another CAB."""
    target = in_transaction(
        sessions, lambda session: cab_run_safety(session, pending.cab_name).on_unverified
    )
    if target is None:
        return
    if target == ESCALATE:
        logger.warning(
            "Alert %s: the fix by CAB %s is unverified; escalated", pending.id, pending.cab_name
        )
        in_transaction(sessions, lambda session: _append_reason(session, pending.id, ESCALATED))
        return
    start_follow_up(sessions, engine_api, pending.id, target)


def _stale_follow_ups(session: Session, limit: int) -> list[tuple[str, str | None]]:
    """Unverified episodes whose ``on_unverified`` run was asked for but never recorded."""
    rows = session.execute(
        sa.select(Alert.id, Alert.cab_name)
        .where(
            Alert.verification == UNVERIFIED,
            Alert.follow_up_execution_id.is_(None),
            Alert.follow_up_requested_at < utcnow() - FOLLOW_UP_RECOVERY,
        )
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


def _on_unverified_cab(sessions: sessionmaker[Session], cab_name: str | None) -> str | None:
    target = in_transaction(
        sessions, lambda session: cab_run_safety(session, cab_name).on_unverified
    )
    return None if target == ESCALATE else target


def retry_follow_ups(
    sessions: sessionmaker[Session], engine_api: CabRunner, limit: int = BATCH
) -> int:
    """Ask again for ``on_unverified`` runs whose asker died (or met an engine it could not
    reach); how many were started."""
    started = 0
    stale = in_transaction(sessions, lambda session: _stale_follow_ups(session, limit))
    for alert_id, cab_name in stale:
        target = _on_unverified_cab(sessions, cab_name)
        if target is not None and start_follow_up(sessions, engine_api, alert_id, target):
            started += 1
    return started


def _verify_one(
    sessions: sessionmaker[Session],
    alertmanager: AlertmanagerClient | None,
    engine_api: CabRunner,
    pending: Pending,
) -> str | None:
    """End one verification; verified, unverified, or None when another worker did."""
    verification, reason = _judge(pending, alertmanager)
    if not in_transaction(
        sessions, lambda session: _conclude(session, pending, verification, reason)
    ):
        return None
    logger.info("Alert %s: fix %s (%s)", pending.id, verification, reason)
    if verification == UNVERIFIED:
        _follow_up(sessions, engine_api, pending)
    return verification


def refresh_follow_up_runs(session: Session) -> int:
    """Copy the engine's status onto the extension rows of ``on_unverified`` runs (tracking
    follows an episode's own run only); how many changed."""
    rows = session.execute(
        sa.select(ExecutionExtension, ExecutionDB.status)
        .join(ExecutionDB, ExecutionDB.id == ExecutionExtension.st2_execution_id)
        .join(Alert, Alert.id == ExecutionExtension.alert_id)
        .where(
            Alert.verification == UNVERIFIED,
            ExecutionExtension.step_order == 0,
            ExecutionExtension.cab_name.is_not(None),
            sa.or_(
                ExecutionExtension.status.is_(None),
                ExecutionExtension.status != ExecutionDB.status,
            ),
        )
        .limit(BATCH)
    ).all()
    for extension, status in rows:
        extension.status = status
        extension.result_matched = (status == SUCCEEDED) if status in COMPLETED_STATUSES else None
        extension.updated_at = utcnow()
    return len(rows)


def verify_pending(
    sessions: sessionmaker[Session],
    alertmanager: AlertmanagerClient | None,
    engine_api: CabRunner,
    limit: int = BATCH,
) -> dict[str, int]:
    """End the verification of every episode whose alert resolved or whose window passed."""
    counts = {VERIFIED: 0, UNVERIFIED: 0}
    due = in_transaction(sessions, lambda session: _pending(session, utcnow(), limit))
    for pending in due:
        token = request_id_var.set(pending.request_id)
        try:
            verification = _verify_one(sessions, alertmanager, engine_api, pending)
        except AlertmanagerUnavailableError as error:
            logger.warning("Verifying alert %s waits for Alertmanager: %s", pending.id, error)
            break
        finally:
            request_id_var.reset(token)
        if verification is not None:
            counts[verification] += 1
    retry_follow_ups(sessions, engine_api, limit)
    in_transaction(sessions, refresh_follow_up_runs)
    return counts
