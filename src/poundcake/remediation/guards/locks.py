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

from poundcake.db.base import table_of
from poundcake.db.types import utcnow
from poundcake.remediation.guards.models import TargetLock


@dataclass(frozen=True)
class LockHolder:
    """Who holds a target now."""

    alert_id: str
    cab_name: str
    expires_at: datetime


@dataclass(frozen=True)
class Lease:
    """A lease this pass wants: the target, for which episode and CAB, from when, how long."""

    target: str
    alert_id: str
    cab_name: str
    now: datetime
    seconds: float

    def values(self) -> dict[str, Any]:
        """The lock row's columns."""
        return {
            "target": self.target,
            "alert_id": self.alert_id,
            "cab_name": self.cab_name,
            "acquired_at": self.now,
            "expires_at": self.now + timedelta(seconds=self.seconds),
        }


def claim_free(session: Session, lease: Lease) -> bool:
    """Lease a target that has no row yet (the common case) in one statement.

    ``INSERT IGNORE`` inserts the lease, locked by this transaction, or does nothing when a row
    exists (it waits for a concurrent insert of the same target to end first); then
    :func:`holder` and :func:`take_lock` decide on the existing row.
    """
    prefix = "OR IGNORE" if session.get_bind().dialect.name == "sqlite" else "IGNORE"
    statement = sa.insert(table_of(TargetLock)).prefix_with(prefix).values(**lease.values())
    return bool(getattr(session.execute(statement), "rowcount", 0) == 1)


def holder(session: Session, target: str) -> LockHolder | None:
    """The live holder of ``target`` (its row locked until the transaction ends), or None."""
    query = sa.select(TargetLock).where(TargetLock.target == target)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    found = session.scalars(query.execution_options(populate_existing=True)).first()
    if found is None or found.expires_at <= utcnow():
        return None
    return LockHolder(found.alert_id, found.cab_name, found.expires_at)


def take_lock(session: Session, lease: Lease) -> None:
    """Take over a target whose lease expired (its row is locked: see :func:`holder`)."""
    values = lease.values()
    del values["target"]
    result = session.execute(
        sa.update(TargetLock)
        .where(TargetLock.target == lease.target)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        # Released (deleted) since claim_free saw it: the target is free to insert again.
        claim_free(session, lease)


def release_targets(session: Session, alert_id: str, targets: list[str]) -> None:
    """Give back some of the episode's leases (taken in a pass that then had to wait)."""
    session.execute(
        sa.delete(TargetLock)
        .where(TargetLock.alert_id == alert_id, TargetLock.target.in_(targets))
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
