"""Storm breakers: what is over the line is held, and the breaker shows it until things calm down.

A breaker scope is ``global`` (new episodes over ``POUNDCAKE_STORM_MAX_ALERTS`` in the storm
window), ``cab:<name>`` (alerts matched to a CAB over its ``storm.max_alerts``) or
``blast:<cab>:<group>`` (runs over a CAB's blast radius in one group). The guard step counts and
holds; each hold *trips* the scope's breaker. A breaker is open from its first trip until no trip
came for ``POUNDCAKE_BREAKER_QUIET_SECONDS``, or until ``poundcake breaker reset`` closes it; a
reset also restarts the counting (only what came after it counts), so dispatch resumes.
``poundcake_breaker_open`` on ``/metrics`` is 1 per open scope: Alertmanager can alert on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.remediation.guards.models import Breaker
from poundcake.remediation.guards.rows import insert_missing

GLOBAL = "global"


def cab_scope(cab_name: str) -> str:
    """The breaker scope of a CAB's storm limit."""
    return f"cab:{cab_name}"


def blast_scope(cab_name: str, group: str) -> str:
    """The breaker scope of a CAB's blast radius in one group."""
    return f"blast:{cab_name}:{group}"[:255]


@dataclass(frozen=True)
class BreakerState:
    """One breaker as ``poundcake breaker status`` and the API show it."""

    scope: str
    open: bool
    opened_at: datetime | None
    tripped_at: datetime | None
    reset_at: datetime | None
    trips: int
    reason: str | None

    def document(self) -> dict[str, Any]:
        """The breaker as JSON."""
        return {
            "scope": self.scope,
            "state": "open" if self.open else "closed",
            "opened_at": _iso(self.opened_at),
            "tripped_at": _iso(self.tripped_at),
            "reset_at": _iso(self.reset_at),
            "trips": self.trips,
            "reason": self.reason,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _is_open(row: Breaker, now: datetime, quiet_seconds: float) -> bool:
    return row.tripped_at is not None and row.tripped_at > now - timedelta(seconds=quiet_seconds)


def trip(session: Session, scope: str, reason: str, *, quiet_seconds: float) -> None:
    """Record a hold by ``scope``'s breaker: it opens (or stays open) from now."""
    now = utcnow()
    insert_missing(session, Breaker, {"scope": scope, "trips": 0})
    row = session.get(Breaker, scope, populate_existing=True)
    assert row is not None
    if not _is_open(row, now, quiet_seconds):
        row.opened_at = now
    row.tripped_at = now
    row.trips = (row.trips or 0) + 1
    row.reason = reason
    session.flush()


def breaker_states(session: Session, *, quiet_seconds: float) -> list[BreakerState]:
    """Every breaker scope PoundCake has tripped, open or closed, by scope."""
    now = utcnow()
    return [
        BreakerState(
            scope=row.scope,
            open=_is_open(row, now, quiet_seconds),
            opened_at=row.opened_at,
            tripped_at=row.tripped_at,
            reset_at=row.reset_at,
            trips=row.trips or 0,
            reason=row.reason,
        )
        for row in session.scalars(sa.select(Breaker).order_by(Breaker.scope))
    ]


def reset_breakers(session: Session, scope: str | None = None) -> list[str]:
    """Close one breaker (or all): counting restarts now. Return the scopes reset."""
    query = sa.select(Breaker)
    if scope is not None:
        query = query.where(Breaker.scope == scope)
    now = utcnow()
    reset = []
    for row in session.scalars(query.with_for_update()):
        row.reset_at = now
        row.tripped_at = None
        row.opened_at = None
        reset.append(row.scope)
    session.flush()
    return reset
