"""One pass of run safety around and after CAB runs: silences, then verification."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from poundcake.remediation.aftercare.silences import start_silence, sweep_silences
from poundcake.remediation.aftercare.verification import CabRunner, verify_pending
from poundcake.remediation.alertmanager_api import AlertmanagerClient


@dataclass
class AftercareSummary:
    """What one pass did."""

    silences_made: int = 0
    silences_settled: int = 0
    verified: int = 0
    unverified: int = 0


def aftercare_pass(
    *,
    sessions: sessionmaker[Session],
    alertmanager: AlertmanagerClient | None,
    engine_api: CabRunner,
    silence_max_seconds: int,
) -> AftercareSummary:
    """Create and expire silences (when Alertmanager is configured), then end verifications."""
    summary = AftercareSummary()
    if alertmanager is not None:
        summary.silences_made, summary.silences_settled = sweep_silences(
            sessions, alertmanager, silence_max_seconds
        )
    counts = verify_pending(sessions, alertmanager, engine_api)
    summary.verified, summary.unverified = counts["verified"], counts["unverified"]
    return summary


def after_follow(
    *,
    sessions: sessionmaker[Session],
    alertmanager: AlertmanagerClient | None,
    alert_id: str,
    silence_max_seconds: int,
) -> None:
    """Right after an alert was followed: silence it if its CAB now runs and asks for it."""
    if alertmanager is not None:
        start_silence(sessions, alertmanager, alert_id, silence_max_seconds)
