"""Task ``poundcake.follow_remediations``: one pass of following alerts through the engine.

Beat sends it every two seconds, so an unavailable engine is not retried here: the pass stops,
says so once (at warning level, then at debug level until the engine is back) and the next tick
tries again. Alerts that could not be followed for any other reason fail the task.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery

from poundcake.exceptions import PoundCakeError
from poundcake.remediation.engine_client import EngineUnavailableError
from poundcake.remediation.tasks.app import FOLLOW_REMEDIATIONS, WorkerResources
from poundcake.remediation.tracking.service import follow_remediations

logger = logging.getLogger(__name__)


class FollowFailedError(PoundCakeError):
    """Some alerts could not be followed (each is in the log)."""


def register(app: Celery, resources: WorkerResources) -> Any:
    """Register ``poundcake.follow_remediations`` on ``app``."""
    engine_down = threading.Event()
    cursor: list[str | None] = [None]

    def run() -> dict[str, int]:
        try:
            summary = follow_remediations(
                sessions=resources.sessions, engine=resources.engine, after=cursor[0]
            )
        except EngineUnavailableError as error:
            level = logging.DEBUG if engine_down.is_set() else logging.WARNING
            logger.log(level, "Following remediations waits for the engine: %s", error)
            engine_down.set()
            return {"looked": 0, "changed": 0}
        cursor[0] = summary.cursor
        if engine_down.is_set():
            logger.info("The engine answers again; following remediations")
            engine_down.clear()
        if summary.failed:
            raise FollowFailedError(f"could not follow alerts {', '.join(summary.failed)}")
        return {"looked": summary.looked, "changed": summary.changed}

    return app.task(name=FOLLOW_REMEDIATIONS, time_limit=120)(run)
