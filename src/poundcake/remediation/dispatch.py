"""The dispatch stage: a delivery of an alert becomes a ``poundcake.alert`` trigger instance in
the engine, or closes its episode. :func:`process_deliveries` is the stage; a Celery worker runs
it (:mod:`poundcake.remediation.tasks.deliveries`).

A delivery (an outbox row) is processed once, in short transactions around the calls to the
engine; no row lock is held across a call (in the embedded default the engine writes to the same
SQLite file):

1. :func:`decide`, the alert row locked: a resolved delivery closes the episode; a firing delivery
   of a new episode passes the guard step (:func:`poundcake.remediation.guards.service.admit`:
   which CABs run, each decision recorded), then claims its dispatch by setting ``dispatch_key``
   (committed before anything is sent) and becomes the episode's *dispatching* delivery; any
   other delivery is a repeat and is only recorded. An episode whose every matched CAB is held
   is not dispatched (``held``); one whose CAB waits for a locked target stays unprocessed and is
   decided again later; one whose CAB waits for an approval stays unprocessed, kept from the
   relay until the approval's expiry, and is handed back when the approval is answered.
2. The caller sends the payload to the engine, after asking the engine for the key first when an
   earlier attempt may have sent it already, so an episode is dispatched exactly once.
3. :func:`record_dispatch` or :func:`record_refusal` stores the result and marks the delivery
   processed in the same transaction.

Two copies of one delivery never run at once: :func:`claim_delivery` takes it for
:data:`CLAIM_SECONDS` by moving ``relayed_at`` ahead (compare-and-set), which also keeps the relay
from handing it out again meanwhile.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.config import Settings
from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.logging import request_id_var
from poundcake.remediation.alerts.lifecycle import (
    IN_PROGRESS,
    RESOLVED_BEFORE_REMEDIATION,
    RESOLVED_WHILE_REMEDIATING,
    AlertState,
    lock_alert,
    transition,
)
from poundcake.remediation.alerts.models import Alert, AlertDelivery
from poundcake.remediation.alerts.trigger import FIRING, RESOLVED, Delivery, alert_payload
from poundcake.remediation.engine_api import (
    LOOKUP_SLACK,
    EngineError,
    EngineUnavailableError,
    cancel_workflow,
)
from poundcake.remediation.guards.service import GuardLimits, admit, admitted_cabs
from poundcake.remediation.resources import TRANSIENT_ERRORS, WorkerResources

logger = logging.getLogger(__name__)

# The outcome of the delivery that owns its episode's dispatch, until the dispatch is recorded.
DISPATCHING = "dispatching"
# The outcome of a delivery whose CAB waits for a locked target (it is decided again later).
WAITING_OUTCOME = "waiting for a target lock"
# The outcome of a delivery whose CAB waits for a person's approval.
APPROVAL_OUTCOME = "waiting for approval"
# How long a worker may hold a delivery; longer than the engine calls of one delivery can take.
CLAIM_SECONDS = 120.0


@dataclass(frozen=True)
class DeliveryPlan:
    """What is left to do for a delivery after :func:`decide`."""

    request_id: str | None = None
    outcome: str | None = None
    dispatch_key: str | None = None
    payload: dict[str, Any] | None = None
    lookup_since: datetime | None = None
    may_post: bool = False
    cancel_execution_id: str | None = None
    # The guard step asked to decide the delivery again after this many seconds (target lock).
    retry_after: float | None = None
    # Waiting for an approval: kept from the relay until then (an answer hands it back sooner).
    hold_until: datetime | None = None

    @property
    def dispatches(self) -> bool:
        """Tell whether the alert still has to be (found or) sent in the engine."""
        return self.dispatch_key is not None


def _payload(
    alert: Alert, delivery: AlertDelivery, dispatch_key: str | None, admitted: list[str]
) -> dict[str, Any]:
    """The ``poundcake.alert`` payload for an episode, as delivered by ``delivery``."""
    by = Delivery(delivery.request_id, alert.id, delivery.receiver, delivery.group_key)
    context = {"request_id": by.request_id, "alert_id": alert.id, "dispatch_key": dispatch_key}
    return {**alert_payload(alert, by, context=context), "admitted_cabs": admitted}


def guard_limits(settings: Settings) -> GuardLimits:
    """The guards' global settings."""
    return GuardLimits(
        storm_max_alerts=settings.storm_max_alerts,
        storm_window_seconds=settings.storm_window_seconds,
        breaker_quiet_seconds=settings.breaker_quiet_seconds,
        lock_lease_seconds=settings.target_lock_lease_seconds,
        lock_retry_seconds=settings.target_lock_retry_seconds,
    )


# --- claims ---------------------------------------------------------------------------------


def claim_delivery(
    session: Session, delivery_id: int, *, seconds: float = CLAIM_SECONDS
) -> datetime | None:
    """Take an unprocessed delivery nobody holds; return the claim (``relayed_at``) or None."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    result = session.execute(
        sa.update(AlertDelivery)
        .where(
            AlertDelivery.id == delivery_id,
            AlertDelivery.processed_at.is_(None),
            sa.or_(AlertDelivery.relayed_at.is_(None), AlertDelivery.relayed_at <= now),
        )
        .values(relayed_at=until)
        .execution_options(synchronize_session=False)
    )
    return until if getattr(result, "rowcount", 0) == 1 else None


def release_delivery(
    session: Session, delivery_id: int, claim: datetime, *, until: datetime | None = None
) -> None:
    """Give back a claim that did not end in processing; it may be taken again from ``until``."""
    session.execute(
        sa.update(AlertDelivery)
        .where(
            AlertDelivery.id == delivery_id,
            AlertDelivery.processed_at.is_(None),
            AlertDelivery.relayed_at == claim,
        )
        .values(relayed_at=until or utcnow())
        .execution_options(synchronize_session=False)
    )


def hold_deliveries(session: Session, delivery_ids: Iterable[int], *, until: datetime) -> int:
    """Keep unprocessed deliveries from the relay until ``until`` (a retry is scheduled then)."""
    result = session.execute(
        sa.update(AlertDelivery)
        .where(
            AlertDelivery.id.in_(list(delivery_ids)),
            AlertDelivery.processed_at.is_(None),
            sa.or_(AlertDelivery.relayed_at.is_(None), AlertDelivery.relayed_at < until),
        )
        .values(relayed_at=until)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- the decision and its outcome -----------------------------------------------------------


def _lock(session: Session, delivery_id: int) -> tuple[Alert, AlertDelivery] | None:
    """The delivery and its alert, the alert row locked (every writer locks the alert first)."""
    found = session.get(AlertDelivery, delivery_id)
    if found is None:
        return None
    alert = lock_alert(session, found.alert_id)
    delivery = session.get(AlertDelivery, delivery_id, populate_existing=True)
    if alert is None or delivery is None:
        return None
    return alert, delivery


def _processed(delivery: AlertDelivery, outcome: str) -> str:
    delivery.processed_at = utcnow()
    delivery.outcome = outcome
    return outcome


def _finish(delivery: AlertDelivery, outcome: str, **plan: Any) -> DeliveryPlan:
    return DeliveryPlan(
        request_id=delivery.request_id, outcome=_processed(delivery, outcome), **plan
    )


def decide(session: Session, delivery_id: int, limits: GuardLimits | None = None) -> DeliveryPlan:
    """Work out what a delivery asks for; apply what needs no engine call. Flushes only."""
    locked = _lock(session, delivery_id)
    if locked is None:
        return DeliveryPlan(outcome="the delivery no longer exists")
    alert, delivery = locked
    if delivery.processed_at is not None:
        return DeliveryPlan(request_id=delivery.request_id, outcome=delivery.outcome or "done")
    if delivery.alertmanager_status == RESOLVED:
        return _close_episode(session, alert, delivery)
    return _plan_dispatch(session, alert, delivery, limits or GuardLimits())


def _close_episode(session: Session, alert: Alert, delivery: AlertDelivery) -> DeliveryPlan:
    previous = AlertState(alert.state)
    if previous is AlertState.RESOLVED:
        return _finish(delivery, "repeat: the episode was already resolved")
    values: dict[str, Any] = {"resolved_at": alert.resolved_at or utcnow()}
    if previous in IN_PROGRESS:
        # A dispatched episode is followed on: its workflow is canceled and its steps recorded.
        dispatched = alert.trigger_instance_id is not None
        values["state_reason"] = (
            RESOLVED_WHILE_REMEDIATING if dispatched else RESOLVED_BEFORE_REMEDIATION
        )
    transition(session, alert.id, AlertState.RESOLVED, {previous}, **values)
    running = previous in (AlertState.MATCHED, AlertState.REMEDIATING)
    cancel = alert.workflow_execution_id if running else None
    outcome = f"resolved the episode (was {previous})"
    if cancel:
        outcome += f"; canceling workflow execution {cancel}"
    return _finish(delivery, outcome, cancel_execution_id=cancel)


def _plan_dispatch(
    session: Session, alert: Alert, delivery: AlertDelivery, limits: GuardLimits
) -> DeliveryPlan:
    if alert.trigger_instance_id is not None:
        return _finish(
            delivery, f"repeat: already dispatched as trigger instance {alert.trigger_instance_id}"
        )
    open_episode = alert.state == AlertState.RECEIVED and alert.alertmanager_status == FIRING
    if alert.dispatch_key is None:
        if not open_episode:
            return _finish(delivery, f"not dispatched: the episode is {alert.state}")
        return _admit(session, alert, delivery, limits)
    if delivery.outcome != DISPATCHING:
        return _finish(delivery, "repeat: another delivery of the episode is dispatching it")
    # This delivery owns the dispatch and an earlier attempt may have sent it: look first.
    admitted = admitted_cabs(session, alert.id)
    return DeliveryPlan(
        request_id=delivery.request_id,
        dispatch_key=alert.dispatch_key,
        payload=_payload(alert, delivery, alert.dispatch_key, admitted),
        lookup_since=delivery.received_at - LOOKUP_SLACK,
        may_post=open_episode,
    )


def _admit(
    session: Session, alert: Alert, delivery: AlertDelivery, limits: GuardLimits
) -> DeliveryPlan:
    """The guard step for a new episode; then claim its dispatch, hold it, or wait."""
    preview = _payload(alert, delivery, None, [])
    admission = admit(session, alert, preview, request_id=delivery.request_id, limits=limits)
    if admission.retry_after is not None or admission.hold_until is not None:
        delivery.outcome = WAITING_OUTCOME if admission.retry_after else APPROVAL_OUTCOME
        return DeliveryPlan(
            request_id=delivery.request_id,
            outcome=f"waiting: {admission.summary()}",
            retry_after=admission.retry_after,
            hold_until=admission.hold_until,
        )
    if admission.matched and not admission.admitted:
        reason = f"held by the guards: {admission.summary()}"
        transition(session, alert.id, AlertState.HELD, {AlertState.RECEIVED}, state_reason=reason)
        return _finish(delivery, reason)
    key = uuid.uuid4().hex
    alert.dispatch_key = key
    alert.updated_at = utcnow()
    delivery.outcome = DISPATCHING
    return DeliveryPlan(
        request_id=delivery.request_id,
        dispatch_key=key,
        payload=_payload(alert, delivery, key, admission.admitted),
        may_post=True,
    )


def record_dispatch(session: Session, delivery_id: int, instance_ids: list[str]) -> str:
    """Store the trigger instance an episode became and mark the delivery processed."""
    locked = _lock(session, delivery_id)
    if locked is None:
        return "the delivery no longer exists"
    alert, delivery = locked
    if delivery.processed_at is not None:
        return delivery.outcome or "done"
    if not instance_ids:
        return _processed(delivery, "not dispatched: the episode closed first")
    first = instance_ids[0]
    if alert.trigger_instance_id is None:
        alert.trigger_instance_id = first
        alert.updated_at = utcnow()
        if alert.state == AlertState.RESOLVED:
            # Resolved while the dispatch was under way: follow it on to cancel and record it.
            alert.state_reason = RESOLVED_WHILE_REMEDIATING
    outcome = f"dispatched as trigger instance {first}"
    if len(instance_ids) > 1:
        outcome += f" (and {', '.join(instance_ids[1:])})"
    return _processed(delivery, outcome)


def record_refusal(session: Session, delivery_id: int, error: EngineError) -> str:
    """The engine refused the alert for good: the episode fails and the delivery is done."""
    locked = _lock(session, delivery_id)
    if locked is None:
        return "the delivery no longer exists"
    alert, delivery = locked
    if delivery.processed_at is not None:
        return delivery.outcome or "done"
    reason = f"the engine refused the alert: {error.faultstring or error}"
    transition(session, alert.id, AlertState.FAILED, {AlertState.RECEIVED}, state_reason=reason)
    return _processed(delivery, reason)


# --- one delivery, end to end ----------------------------------------------------------


@dataclass
class DeliveriesOutcome:
    """What one run did with its deliveries."""

    processed: dict[int, str] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    # Deliveries the guard step decides again later (a target lock), with the seconds to wait.
    waiting: dict[int, float] = field(default_factory=dict)
    # Deliveries waiting for an approval (handed back when it is answered or expires).
    awaiting_approval: list[int] = field(default_factory=list)


def _send(resources: WorkerResources, plan: DeliveryPlan) -> list[str]:
    """Find the episode's trigger instance from an earlier attempt, or create it."""
    engine_api = resources.engine_api
    assert plan.dispatch_key is not None and plan.payload is not None
    if plan.lookup_since is not None:
        found = engine_api.find_dispatched(plan.dispatch_key, plan.lookup_since)
        if found:
            logger.info("Alert was dispatched by an earlier attempt as %s", ", ".join(found))
            return found
    if not plan.may_post:
        return []
    created = engine_api.dispatch_alert(plan.payload)
    if not created:
        raise EngineUnavailableError("the engine accepted the alert but named no trigger instance")
    logger.info("Dispatched alert %s as trigger instance %s", plan.payload["alert_id"], created[0])
    return created


def process_delivery(resources: WorkerResources, delivery_id: int) -> str:
    """Process one (claimed) delivery; return its outcome."""
    return _process(resources, delivery_id)[0]


def _process(resources: WorkerResources, delivery_id: int) -> tuple[str, DeliveryPlan]:
    """Process one delivery: its outcome, and the plan (when to decide it again)."""
    sessions = resources.sessions
    limits = guard_limits(resources.settings)
    plan = in_transaction(sessions, lambda session: decide(session, delivery_id, limits))
    token = request_id_var.set(plan.request_id)
    try:
        return _carry_out(resources, delivery_id, plan), plan
    finally:
        request_id_var.reset(token)


def _carry_out(resources: WorkerResources, delivery_id: int, plan: DeliveryPlan) -> str:
    """Send what the plan says to the engine and record the result."""
    sessions = resources.sessions
    if not plan.dispatches:
        if plan.cancel_execution_id:
            cancel_workflow(resources.engine_api, plan.cancel_execution_id)
        return plan.outcome or ""
    try:
        instance_ids = _send(resources, plan)
    except EngineUnavailableError:
        raise
    except EngineError as error:
        logger.warning("The engine refused delivery %s: %s", delivery_id, error)
        refusal = error
        return in_transaction(
            sessions, lambda session: record_refusal(session, delivery_id, refusal)
        )
    return in_transaction(
        sessions, lambda session: record_dispatch(session, delivery_id, instance_ids)
    )


def _give_back(
    resources: WorkerResources, delivery_id: int, claim: datetime, until: datetime | None = None
) -> None:
    try:
        in_transaction(
            resources.sessions,
            lambda session: release_delivery(session, delivery_id, claim, until=until),
        )
    except Exception:
        logger.exception("Could not give back delivery %s; its claim will expire", delivery_id)


def process_deliveries(
    resources: WorkerResources, delivery_ids: Iterable[int]
) -> DeliveriesOutcome:
    """Claim and process each delivery; a transient error stops the run and is raised."""
    outcome = DeliveriesOutcome()
    for delivery_id in sorted({int(value) for value in delivery_ids}):
        claim = in_transaction(
            resources.sessions, functools.partial(claim_delivery, delivery_id=delivery_id)
        )
        if claim is None:
            outcome.skipped.append(delivery_id)
            continue
        try:
            text, plan = _process(resources, delivery_id)
        except TRANSIENT_ERRORS:
            _give_back(resources, delivery_id, claim)
            raise
        except Exception:
            logger.exception("Delivery %s failed", delivery_id)
            _give_back(resources, delivery_id, claim)
            outcome.failed.append(delivery_id)
            continue
        if plan.retry_after is not None:
            # Kept from the relay until its retry (the task schedules one) is due.
            until = utcnow() + timedelta(seconds=plan.retry_after)
            _give_back(resources, delivery_id, claim, until)
            outcome.waiting[delivery_id] = plan.retry_after
        elif plan.hold_until is not None:
            # Answering the approval hands it back; its expiry is the relay's fallback.
            _give_back(resources, delivery_id, claim, plan.hold_until)
            outcome.awaiting_approval.append(delivery_id)
        else:
            outcome.processed[delivery_id] = text
    return outcome


def hold_for_retry(resources: WorkerResources, delivery_ids: Iterable[int], seconds: float) -> None:
    """Keep the relay off deliveries whose retry is scheduled in ``seconds``."""
    until = utcnow() + timedelta(seconds=seconds)
    ids = [int(value) for value in delivery_ids]
    try:
        in_transaction(
            resources.sessions, lambda session: hold_deliveries(session, ids, until=until)
        )
    except Exception:
        logger.exception("Could not hold deliveries for their retry; the relay may send them too")
