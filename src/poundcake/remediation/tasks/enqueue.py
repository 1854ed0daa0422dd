"""Handing deliveries to the workers right after intake commits them.

:func:`enqueue_deliveries` sends one ``poundcake.process_deliveries`` message and never raises: the
deliveries are in the database already, and the outbox relay hands out whatever stays
unprocessed. The Celery app behind it is made once per process (from :func:`configure_enqueue`'s
settings, else from the environment on first use) and keeps a pool of broker connections, so a
call costs one publish on a warm connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from celery import Celery

from poundcake.config import Settings, load_settings
from poundcake.remediation.tasks.app import PROCESS_DELIVERIES, QUEUE, make_celery

logger = logging.getLogger(__name__)

# Publishing must stay cheap for the request that calls it: retry briefly, then give up.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}

_lock = threading.Lock()
_app: Celery | None = None


def send_deliveries(app: Celery, delivery_ids: Sequence[int]) -> None:
    """Send one ``poundcake.process_deliveries`` message; raises if the broker refuses."""
    app.send_task(
        PROCESS_DELIVERIES,
        args=[[int(delivery_id) for delivery_id in delivery_ids]],
        queue=QUEUE,
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )


def configure_enqueue(settings: Settings) -> None:
    """Publish with these settings' broker from now on (the API calls this at startup)."""
    global _app
    with _lock:
        previous, _app = _app, make_celery(settings)
    if previous is not None:
        previous.close()


def close_enqueue() -> None:
    """Close the broker connections (at shutdown)."""
    global _app
    with _lock:
        previous, _app = _app, None
    if previous is not None:
        previous.close()


def _publisher() -> Any:
    global _app
    with _lock:
        if _app is None:
            _app = make_celery(load_settings())
        return _app


def enqueue_deliveries(ids: Sequence[int]) -> None:
    """Ask the workers to process these deliveries now; on any failure, leave it to the relay."""
    if not ids:
        return
    try:
        send_deliveries(_publisher(), ids)
    except Exception as error:  # noqa: BLE001 - never fail the request: the relay catches up
        logger.warning(
            "Could not hand %d deliveries to the workers (%s: %s); the outbox relay will",
            len(ids),
            type(error).__name__,
            error,
        )
