"""Task ``poundcake.aftercare``: one pass of run safety (silences, verification), every two
seconds from beat. An unreachable Alertmanager or engine waits for the next tick."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from poundcake.remediation.aftercare.service import aftercare_pass
from poundcake.remediation.alertmanager_api import AlertmanagerUnavailableError
from poundcake.remediation.engine_api import EngineUnavailableError
from poundcake.remediation.resources import WorkerResources
from poundcake.remediation.tasks.app import AFTERCARE

logger = logging.getLogger(__name__)


def register(app: Celery, resources: WorkerResources) -> Any:
    """Register ``poundcake.aftercare`` on ``app``."""

    def run() -> dict[str, int]:
        try:
            summary = aftercare_pass(
                sessions=resources.sessions,
                alertmanager=resources.alertmanager,
                engine_api=resources.engine_api,
                silence_max_seconds=resources.settings.silence_max_seconds,
            )
        except (AlertmanagerUnavailableError, EngineUnavailableError) as error:
            logger.warning("Aftercare waits for the next pass: %s", error)
            return {}
        return {
            "silences_made": summary.silences_made,
            "silences_settled": summary.silences_settled,
            "verified": summary.verified,
            "unverified": summary.unverified,
        }

    return app.task(name=AFTERCARE, time_limit=120)(run)
