"""Task ``poundcake.process_deliveries(ids)``: the dispatch stage on a Celery worker.

The work is :func:`poundcake.remediation.dispatch.process_deliveries`; this module adds what a
task needs around it. When the engine or the database is unavailable the task keeps its
remaining deliveries from the relay until the retry is due, and retries itself with backoff;
deliveries stay unprocessed until they are done. A delivery that fails otherwise is logged and
given back; the others go on, and the task then fails so the failure shows.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from poundcake.exceptions import PoundCakeError
from poundcake.remediation.dispatch import hold_for_retry, process_deliveries
from poundcake.remediation.resources import TRANSIENT_ERRORS, WorkerResources
from poundcake.remediation.tasks.app import PROCESS_DELIVERIES, retry_countdown

logger = logging.getLogger(__name__)


class DeliveriesFailedError(PoundCakeError):
    """Some deliveries of a task failed on an unexpected error (each is in the log)."""


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
        if outcome.waiting:
            # A target lock: the guard step decides these deliveries again once it may be free.
            task.apply_async(
                args=[sorted(outcome.waiting)], countdown=max(outcome.waiting.values())
            )
        if outcome.failed:
            raise DeliveriesFailedError(
                f"deliveries {', '.join(map(str, outcome.failed))} failed; the relay retries them"
            )
        return {
            "processed": len(outcome.processed),
            "skipped": len(outcome.skipped),
            "waiting": len(outcome.waiting),
        }

    return app.task(name=PROCESS_DELIVERIES, bind=True, max_retries=None)(run)
