"""Task ``poundcake.approvals``: ask, expire and follow the approvals CABs wait for.

Beat sends it every few seconds; one pass is :func:`poundcake.remediation.approvals.inquiries.
tend`. Deliveries whose approval was settled are handed to the workers at once (the relay would
find them too, a little later).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from poundcake.remediation.approvals.inquiries import tend
from poundcake.remediation.resources import WorkerResources
from poundcake.remediation.tasks.app import APPROVALS
from poundcake.remediation.tasks.enqueue import send_deliveries


def register(app: Celery, resources: WorkerResources) -> Any:
    """Register ``poundcake.approvals`` on ``app``."""

    def run() -> dict[str, int]:
        done = tend(
            resources.sessions,
            resources.engine_api,
            lambda ids: send_deliveries(app, ids),
        )
        return {
            "asked": len(done.asked),
            "expired": len(done.expired),
            "answered_in_engine": len(done.synced),
            "released": len(done.released),
        }

    return app.task(name=APPROVALS, time_limit=60)(run)
