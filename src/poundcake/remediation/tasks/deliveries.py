"""Task ``poundcake.process_deliveries(ids)``: dispatch or close the episodes behind deliveries.

Each delivery is claimed first (a copy of the task running elsewhere skips it), then processed as
:mod:`poundcake.remediation.dispatch` describes, in short transactions around the engine calls.
A delivery already processed is skipped, so the task may run any number of times.

When the engine or the database is unavailable the task stops, keeps its remaining deliveries
from the relay until the retry is due, and retries itself with backoff; deliveries stay
unprocessed until they are done. A delivery that fails otherwise is logged and given back; the
others go on, and the task then fails so the failure shows.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import Celery

from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.exceptions import PoundCakeError
from poundcake.logging import request_id_var
from poundcake.remediation.dispatch import (
    DeliveryPlan,
    claim_delivery,
    decide,
    hold_deliveries,
    record_dispatch,
    record_refusal,
    release_delivery,
)
from poundcake.remediation.engine_api import EngineError, EngineUnavailableError
from poundcake.remediation.tasks.app import (
    PROCESS_DELIVERIES,
    TRANSIENT_ERRORS,
    WorkerResources,
    retry_countdown,
)
from poundcake.remediation.tracking.service import cancel_workflow

logger = logging.getLogger(__name__)


class DeliveriesFailedError(PoundCakeError):
    """Some deliveries of a task failed on an unexpected error (each is in the log)."""


@dataclass
class DeliveriesOutcome:
    """What one run did with its deliveries."""

    processed: dict[int, str] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _send(resources: WorkerResources, plan: DeliveryPlan) -> list[str]:
    """Find the episode's trigger instance from an earlier attempt, or create it."""
    engine = resources.engine
    assert plan.dispatch_key is not None and plan.payload is not None
    if plan.lookup_since is not None:
        found = engine.find_dispatched(plan.dispatch_key, plan.lookup_since)
        if found:
            logger.info("Alert was dispatched by an earlier attempt as %s", ", ".join(found))
            return found
    if not plan.may_post:
        return []
    created = engine.dispatch_alert(plan.payload)
    if not created:
        raise EngineUnavailableError("the engine accepted the alert but named no trigger instance")
    logger.info("Dispatched alert %s as trigger instance %s", plan.payload["alert_id"], created[0])
    return created


def process_delivery(resources: WorkerResources, delivery_id: int) -> str:
    """Process one (claimed) delivery; return its outcome."""
    sessions = resources.sessions
    plan = in_transaction(sessions, lambda session: decide(session, delivery_id))
    token = request_id_var.set(plan.request_id)
    try:
        if not plan.dispatches:
            if plan.cancel_execution_id:
                cancel_workflow(resources.engine, plan.cancel_execution_id)
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
    finally:
        request_id_var.reset(token)


def _give_back(resources: WorkerResources, delivery_id: int, claim: datetime) -> None:
    try:
        in_transaction(
            resources.sessions, lambda session: release_delivery(session, delivery_id, claim)
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
            outcome.processed[delivery_id] = process_delivery(resources, delivery_id)
        except TRANSIENT_ERRORS:
            _give_back(resources, delivery_id, claim)
            raise
        except Exception:
            logger.exception("Delivery %s failed", delivery_id)
            _give_back(resources, delivery_id, claim)
            outcome.failed.append(delivery_id)
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


def register(app: Celery, resources: WorkerResources) -> Any:
    """Register ``poundcake.process_deliveries`` on ``app``."""

    def run(task: Any, delivery_ids: list[int]) -> dict[str, int]:
        try:
            outcome = process_deliveries(resources, delivery_ids)
        except TRANSIENT_ERRORS as error:
            countdown = retry_countdown(task.request.retries)
            hold_for_retry(resources, delivery_ids, countdown)
            logger.warning(
                "Deliveries wait for the engine or the database (%s); retry %d in %.1f s",
                error,
                task.request.retries + 1,
                countdown,
            )
            raise task.retry(exc=error, countdown=countdown) from None
        if outcome.failed:
            raise DeliveriesFailedError(
                f"deliveries {', '.join(map(str, outcome.failed))} failed; the relay retries them"
            )
        return {"processed": len(outcome.processed), "skipped": len(outcome.skipped)}

    return app.task(name=PROCESS_DELIVERIES, bind=True, max_retries=None)(run)
