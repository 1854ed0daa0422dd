"""Tasks ``poundcake.follow_remediations`` (one pass over every followed alert) and
``poundcake.follow_alert`` (one alert, when the engine's stream says it moved), and the beat's
stream follower that sends the latter (:func:`start_stream_follower`).

Beat sends it every two seconds, so an unavailable engine is not retried here: the pass stops,
says so once (at warning level, then at debug level until the engine is back) and the next tick
tries again. Alerts that could not be followed for any other reason fail the task.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery
from kombu.exceptions import KombuError

from poundcake.config import Settings
from poundcake.exceptions import PoundCakeError
from poundcake.remediation.aftercare.service import after_follow
from poundcake.remediation.alertmanager_api import AlertmanagerUnavailableError
from poundcake.remediation.engine_api import EngineUnavailableError
from poundcake.remediation.resources import WorkerResources
from poundcake.remediation.tasks.app import FOLLOW_ALERT, FOLLOW_REMEDIATIONS, QUEUE
from poundcake.remediation.tracking.service import (
    follow_alert,
    follow_remediations,
    followed_alert,
)
from poundcake.remediation.tracking.stream import watch_executions

logger = logging.getLogger(__name__)

STREAM_DEBOUNCE_SECONDS = 0.5


class FollowFailedError(PoundCakeError):
    """Some alerts could not be followed (each is in the log)."""


def register(app: Celery, resources: WorkerResources) -> Any:
    """Register ``poundcake.follow_remediations`` on ``app``."""
    engine_down = threading.Event()
    cursor: list[str | None] = [None]

    def run() -> dict[str, int]:
        try:
            summary = follow_remediations(
                sessions=resources.sessions, engine_api=resources.engine_api, after=cursor[0]
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

    def follow_one(alert_id: str) -> bool:
        return _follow_one(resources, alert_id)

    app.task(name=FOLLOW_ALERT, time_limit=60, ignore_result=True)(follow_one)
    return app.task(name=FOLLOW_REMEDIATIONS, time_limit=120)(run)


def _follow_one(resources: WorkerResources, alert_id: str) -> bool:
    """Follow one alert now (the engine's stream said one of its executions changed)."""
    with resources.sessions() as session:
        alert = followed_alert(session, alert_id)
    if alert is None:
        return False
    try:
        moved = follow_alert(
            sessions=resources.sessions, engine_api=resources.engine_api, alert=alert
        )
        # The run may have started: its silence comes now rather than at the next pass.
        after_follow(
            sessions=resources.sessions,
            alertmanager=resources.alertmanager,
            alert_id=alert_id,
            silence_max_seconds=resources.settings.silence_max_seconds,
        )
    except (EngineUnavailableError, AlertmanagerUnavailableError) as error:
        logger.debug("Following alert %s waits for the next pass: %s", alert_id, error)
        return False
    return moved


def start_stream_follower(app: Celery, settings: Settings) -> threading.Thread:
    """Follow remediations through the engine's stream in a thread of the beat process: each
    execution event of an alert sends ``poundcake.follow_alert`` (at most twice a second per
    alert); the beat's periodic pass remains the fallback."""
    last_sent: dict[str, float] = {}

    def on_alert(alert_id: str) -> None:
        now = time.monotonic()
        if now - last_sent.get(alert_id, 0.0) < STREAM_DEBOUNCE_SECONDS:
            return
        last_sent[alert_id] = now
        if len(last_sent) > 10_000:
            last_sent.clear()
        try:
            app.send_task(FOLLOW_ALERT, args=[alert_id], queue=QUEUE)
        except (KombuError, OSError):
            logger.warning("Could not queue following alert %s; the next pass will", alert_id)

    thread = threading.Thread(
        target=watch_executions,
        args=(settings, on_alert, threading.Event()),
        name="engine-stream",
        daemon=True,
    )
    thread.start()
    return thread
