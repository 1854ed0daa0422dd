"""What tracking does for a CAB's run safety: start verification when a run succeeds, and resume
a run an action runner abandoned when the CAB declares it idempotent (crash-safe retries).

A run whose only failure is abandoned work (:func:`~poundcake.remediation.tracking.observe.
abandoned_only`) is resumed at most ``retry.on_abandoned`` times, once none of its steps is
still in flight (a step whose runner died too ends ``abandoned`` a little later; one on a live
runner finishes and is taken over). The alert row (locked) records
the abandoned workflow in ``retry_of`` and counts the retry before the engine is asked, so two
workers following the alert never both ask; the new workflow (``resume_from`` the abandoned one:
the steps runner takes over every step that was not abandoned, so none that ran is doubled)
then becomes the alert's workflow. A worker that died between the two leaves ``retry_of`` set;
after :data:`RESUME_RECOVERY` the next one looks for the resumed run in the engine before asking
again. A CAB that is not idempotent, or has no retry left, ends the episode ``failed`` with the
reason, as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.engine.public import RESUME_FROM
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.cabs.service import cab_run_safety
from poundcake.remediation.engine_api import EngineApi
from poundcake.remediation.tracking.observe import Observation

logger = logging.getLogger(__name__)

PENDING = "pending"
IN_FLIGHT = frozenset({"requested", "scheduled", "delayed", "running"})
RESUME_RECOVERY = timedelta(seconds=60)


def verification_start(session: Session, alert: Alert) -> dict[str, Any]:
    """The columns that start verifying a successful run (none when the CAB does not verify)."""
    safety = cab_run_safety(session, alert.cab_name)
    if safety.verify_within is None:
        return {}
    return {
        "verification": PENDING,
        "verify_by": utcnow() + timedelta(seconds=safety.verify_within),
        "verification_reason": f"waiting up to {safety.verify_within}s for the alert to resolve",
    }


@dataclass(frozen=True)
class RetryDecision:
    """Fail the episode (with this reason), resume this workflow, or wait (neither)."""

    fail_reason: str | None = None
    resume: str | None = None
    look_first: bool = False


def retry_or_fail(session: Session, alert: Alert, seen: Observation) -> RetryDecision:
    """Decide what an unsuccessful end of the run means (the alert row is locked)."""
    reason = seen.reason or "the remediation failed"
    workflow = seen.workflow_execution_id
    if not seen.abandoned or workflow is None:
        return RetryDecision(fail_reason=reason)
    if any(step.status in IN_FLIGHT for step in seen.steps):
        # A step of the abandoned run still runs (or is about to): its own runner may have died
        # too, so wait until it ends, rather than spend a retry on a run that would lose it.
        return RetryDecision()
    if alert.retry_of == workflow:
        requested = alert.retry_requested_at
        stale = requested is None or requested < utcnow() - RESUME_RECOVERY
        return RetryDecision(resume=workflow, look_first=True) if stale else RetryDecision()
    safety = cab_run_safety(session, alert.cab_name or seen.cab_name)
    used = alert.abandoned_retries or 0
    if used >= safety.retry_on_abandoned:
        if safety.retry_on_abandoned:
            why = f"no retry left ({used} of retry.on_abandoned {safety.retry_on_abandoned} used)"
        else:
            why = "the CAB is not idempotent, so abandoned steps are not run again"
        return RetryDecision(fail_reason=f"{reason}; {why}")
    alert.abandoned_retries = used + 1
    alert.retry_of = workflow
    alert.retry_requested_at = utcnow()
    alert.state_reason = (
        f"{reason}; resuming the run ({used + 1} of {safety.retry_on_abandoned}): "
        "the CAB re-runs abandoned steps"
    )
    alert.updated_at = utcnow()
    logger.info("Alert %s: resuming abandoned workflow %s (retry %d)", alert.id, workflow, used + 1)
    return RetryDecision(resume=workflow)


def _record_resumed(session: Session, alert_id: str, abandoned: str, resumed: str) -> bool:
    result = session.execute(
        sa.update(Alert)
        .where(Alert.id == alert_id, Alert.retry_of == abandoned)
        .values(
            workflow_execution_id=resumed,
            retry_of=None,
            retry_requested_at=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def resume_abandoned(
    *,
    sessions: sessionmaker[Session],
    engine_api: EngineApi,
    alert_id: str,
    abandoned: str,
    look_first: bool = False,
) -> str:
    """Ask the engine to resume the abandoned workflow and make the new one the alert's."""
    resumed = None
    if look_first:
        action = engine_api.get_execution(abandoned).get("action") or {}
        resumed = engine_api.find_execution(str(action.get("ref") or ""), RESUME_FROM, abandoned)
    if resumed is None:
        # Claimed again before asking, so a second worker that also found it stale waits.
        in_transaction(
            sessions,
            lambda session: session.execute(
                sa.update(Alert)
                .where(Alert.id == alert_id, Alert.retry_of == abandoned)
                .values(retry_requested_at=utcnow())
            ),
        )
        resumed = engine_api.resume_run(abandoned)
    in_transaction(sessions, lambda session: _record_resumed(session, alert_id, abandoned, resumed))
    logger.info("Alert %s: workflow %s resumes abandoned %s", alert_id, resumed, abandoned)
    return resumed
