"""Task ``poundcake.relay_outbox``: hand unprocessed deliveries to the workers again.

A delivery is due when it is unprocessed and was last handed out (``relayed_at``, else when it
was received) longer ago than ``POUNDCAKE_RELAY_AFTER_SECONDS``, doubled for each earlier relay
up to 64 times, so a delivery that keeps failing, or a backlog that keeps workers busy, is not
sent over and over. Deliveries a worker holds, or whose retry is scheduled, have ``relayed_at``
ahead of now and are left alone. A broker that lost its messages (a Redis restart) thus loses
nothing: the relay sends them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from celery import Celery
from sqlalchemy.orm import Session

from poundcake.db.retry import in_transaction
from poundcake.db.types import UTCDateTime, utcnow
from poundcake.remediation.alerts.models import AlertDelivery
from poundcake.remediation.resources import WorkerResources
from poundcake.remediation.tasks.app import RELAY_OUTBOX
from poundcake.remediation.tasks.enqueue import send_deliveries

logger = logging.getLogger(__name__)

RELAY_BATCH = 500
MESSAGE_SIZE = 100
MAX_BACKOFF_DOUBLINGS = 6


def _due_before(now: datetime, relay_after: float) -> sa.ColumnElement[Any]:
    """When a delivery must have been handed out to be due, by how often it was relayed."""
    cases = [
        (
            AlertDelivery.attempts <= doublings,
            sa.literal(now - timedelta(seconds=relay_after * 2**doublings), UTCDateTime()),
        )
        for doublings in range(MAX_BACKOFF_DOUBLINGS)
    ]
    longest = now - timedelta(seconds=relay_after * 2**MAX_BACKOFF_DOUBLINGS)
    return sa.case(*cases, else_=sa.literal(longest, UTCDateTime()))


def take_due_deliveries(
    session: Session, *, relay_after: float, limit: int = RELAY_BATCH
) -> list[int]:
    """Pick due deliveries and stamp them relayed (``relayed_at`` now, ``attempts`` + 1)."""
    now = utcnow()
    handed_out = sa.func.coalesce(AlertDelivery.relayed_at, AlertDelivery.received_at)
    query = (
        sa.select(AlertDelivery.id)
        .where(AlertDelivery.processed_at.is_(None), handed_out <= _due_before(now, relay_after))
        .order_by(AlertDelivery.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    ids = list(session.scalars(query))
    if ids:
        session.execute(
            sa.update(AlertDelivery)
            .where(AlertDelivery.id.in_(ids))
            .values(relayed_at=now, attempts=AlertDelivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )
    return ids


def relay_outbox(resources: WorkerResources, publish: Callable[[Sequence[int]], None]) -> int:
    """Hand out every due delivery, :data:`MESSAGE_SIZE` per message; return how many."""
    relay_after = resources.settings.relay_after_seconds
    ids = in_transaction(
        resources.sessions,
        lambda session: take_due_deliveries(session, relay_after=relay_after),
    )
    for start in range(0, len(ids), MESSAGE_SIZE):
        publish(ids[start : start + MESSAGE_SIZE])
    if ids:
        logger.info("Relayed %d unprocessed deliveries to the workers", len(ids))
    return len(ids)


def register(app: Celery, resources: WorkerResources) -> Any:
    """Register ``poundcake.relay_outbox`` on ``app``."""

    def run() -> int:
        return relay_outbox(resources, lambda ids: send_deliveries(app, ids))

    return app.task(name=RELAY_OUTBOX, time_limit=60)(run)
