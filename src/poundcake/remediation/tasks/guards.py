"""Task ``poundcake.renew_target_locks``: keep the leases of live runs from expiring.

Beat sends it every few seconds; a lease whose episode's run still lives is moved ahead when it
is past half its length. If beat or the workers die, the leases expire on their own and another
episode may take the target.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from poundcake.db.retry import in_transaction
from poundcake.remediation.alerts.lifecycle import live_runs
from poundcake.remediation.guards.locks import renew_locks
from poundcake.remediation.resources import WorkerResources
from poundcake.remediation.tasks.app import RENEW_TARGET_LOCKS


def register(app: Celery, resources: WorkerResources) -> Any:
    """Register ``poundcake.renew_target_locks`` on ``app``."""
    lease = resources.settings.target_lock_lease_seconds

    def run() -> int:
        return in_transaction(
            resources.sessions,
            lambda session: renew_locks(session, lease_seconds=lease, live_alert_ids=live_runs()),
        )

    return app.task(name=RENEW_TARGET_LOCKS, time_limit=60)(run)
