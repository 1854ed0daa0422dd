"""Target locks: leases in the database, so two runs never remediate one target at once.

A lock is a row per target naming the alert episode and CAB that hold it, until ``expires_at``.
The guard step takes it (or finds it held) under the row lock of ``SELECT ... FOR UPDATE``; an
expired lease is taken over, so a lock whose holder died frees itself. While the episode's run
lives, :func:`renew_locks` (poundcake-beat, every few seconds) moves the expiry ahead; when the
episode's remediation is over, :func:`release_locks` deletes its leases (called by the lifecycle's
transition, whichever stage moves the episode).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.remediation.guards.models import TargetLock
from poundcake.remediation.guards.rows import insert_missing


@dataclass(frozen=True)
class LockHolder:
    """Who holds a target now."""

    alert_id: str
    cab_name: str
    expires_at: datetime


def holder(session: Session, target: str) -> LockHolder | None:
    """The live holder of ``target`` (the row locked until the transaction ends), or None."""
    now = utcnow()
    free = {"target": target, "alert_id": "", "cab_name": "", "acquired_at": now, "expires_at": now}
    insert_missing(session, TargetLock, free)
    query = sa.select(TargetLock).where(TargetLock.target == target)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    found = session.scalars(query.execution_options(populate_existing=True)).first()
    if found is None or found.expires_at <= now or not found.alert_id:
        return None
    return LockHolder(found.alert_id, found.cab_name, found.expires_at)


def take_lock(
    session: Session, target: str, *, alert_id: str, cab_name: str, lease_seconds: float
) -> None:
    """Hold ``target`` for this episode and CAB (its row is locked: see :func:`holder`)."""
    now = utcnow()
    values = {
        "alert_id": alert_id,
        "cab_name": cab_name,
        "acquired_at": now,
        "expires_at": now + timedelta(seconds=lease_seconds),
    }
    session.execute(
        sa.update(TargetLock)
        .where(TargetLock.target == target)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def release_locks(session: Session, alert_id: str) -> int:
    """Free every target the episode holds; return how many."""
    result = session.execute(
        sa.delete(TargetLock)
        .where(TargetLock.alert_id == alert_id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def renew_locks(session: Session, *, lease_seconds: float, live_alert_ids: sa.Select[Any]) -> int:
    """Move ahead the expiry of leases whose episode's run still lives; return how many."""
    now = utcnow()
    result = session.execute(
        sa.update(TargetLock)
        .where(
            TargetLock.alert_id.in_(live_alert_ids),
            TargetLock.expires_at < now + timedelta(seconds=lease_seconds / 2),
        )
        .values(expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
