"""What the guards count, read in as few round trips as possible.

Every figure one CAB's decision needs (the fingerprint's episodes, the group's runs in the budget
window and its last run, the alerts matched in the storm window, the blast radius group's size
and runs) is one ``SELECT`` of scalar subqueries: the guard step runs for every new alert, and on
a busy database each round trip costs more than the counting itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

from poundcake.db.base import table_of
from poundcake.db.types import UTCDateTime
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.cabs.guard_fields import CabGuards
from poundcake.remediation.guards.models import Breaker, Decision, GuardMember

# Decisions that count as runs for budgets, cooldowns and blast radius.
RUNS = ("run", "shadow")
NOT_MATCHED = "not_matched"


@dataclass(frozen=True)
class CabCounts:
    """The figures of one CAB's guards for one alert."""

    episodes: int = 0
    runs_in_budget: int = 0
    last_run: datetime | None = None
    storm_alerts: int = 0
    blast_size: int = 0
    blast_runs: int = 0


@dataclass(frozen=True)
class Scope:
    """Where one CAB's counting happens: its group, blast radius group, and the resets."""

    cab_name: str
    group: str
    blast: str | None
    blast_scope: str | None
    storm_scope: str
    resets: dict[str, datetime]

    def since(self, scope: str | None, start: datetime) -> datetime:
        """Count from ``start``, or from the scope's breaker reset if that came later."""
        reset = self.resets.get(scope or "")
        return max(start, reset) if reset is not None else start


def breakers_and_storm(
    session: Session,
    scopes: list[str],
    *,
    alert: Alert,
    storm_scope: str,
    storm_window: float | None,
) -> tuple[dict[str, datetime], int]:
    """When each breaker scope was last reset, and the new episodes in the global storm window
    up to this one (counted from the global breaker's reset if later), in one query."""
    resets = {
        scope: sa.select(Breaker.reset_at).where(Breaker.scope == scope).scalar_subquery()
        for scope in dict.fromkeys([storm_scope, *scopes])
    }
    columns = [subquery.label(f"reset_{index}") for index, subquery in enumerate(resets.values())]
    if storm_window is not None:
        start = sa.literal(alert.created_at - timedelta(seconds=storm_window), UTCDateTime())
        reset = resets[storm_scope]
        since = sa.case((reset > start, reset), else_=start)
        opened = sa.select(sa.func.count()).where(
            Alert.created_at > since, Alert.created_at <= alert.created_at
        )
        columns.append(opened.scalar_subquery().label("opened"))
    row: tuple[Any, ...] = tuple(session.execute(sa.select(*columns)).one())
    found: dict[str, datetime] = {
        scope: row[index] for index, scope in enumerate(resets) if row[index] is not None
    }
    return found, int(row[-1] or 0) if storm_window is not None else 0


def see_member(session: Session, scope: str, member: str, now: datetime) -> None:
    """Record that ``member`` belongs to the blast radius group ``scope`` (seen now)."""
    values = {"scope": scope, "member": member, "seen_at": now}
    table = table_of(GuardMember)
    if session.get_bind().dialect.name == "sqlite":
        lite = sqlite.insert(table).values(**values)
        statement: sa.Executable = lite.on_conflict_do_update(
            index_elements=["scope", "member"], set_={"seen_at": now}
        )
    else:
        maria = mysql.insert(table).values(**values)
        statement = maria.on_duplicate_key_update(seen_at=maria.inserted.seen_at)
    session.execute(statement)


def _count(query: sa.Select[Any]) -> sa.ScalarSelect[Any]:
    return query.scalar_subquery()


def count_for_cab(
    session: Session, *, alert: Alert, guards: CabGuards, scope: Scope, now: datetime
) -> CabCounts:
    """Every figure of one CAB's guards, in one query."""
    runs = sa.and_(Decision.cab_name == scope.cab_name, Decision.decision.in_(RUNS))
    in_group = sa.and_(runs, Decision.group_key == scope.group)
    flap_start = alert.created_at - timedelta(seconds=guards.flap.window)
    columns: dict[str, sa.ScalarSelect[Any]] = {
        "episodes": _count(
            sa.select(sa.func.count()).where(
                Alert.fingerprint == alert.fingerprint,
                Alert.created_at > flap_start,
                Alert.created_at <= alert.created_at,
            )
        ),
        "runs_in_budget": _count(
            sa.select(sa.func.count()).where(
                in_group, Decision.created_at > now - timedelta(seconds=guards.budget_window)
            )
        ),
    }
    if guards.cooldown:
        columns["last_run"] = _count(sa.select(sa.func.max(Decision.created_at)).where(in_group))
    if guards.storm.max_alerts:
        since = scope.since(scope.storm_scope, now - timedelta(seconds=guards.storm.window))
        columns["storm_alerts"] = _count(
            sa.select(sa.func.count(sa.distinct(Decision.alert_id))).where(
                Decision.cab_name == scope.cab_name,
                Decision.decision != NOT_MATCHED,
                Decision.created_at > since,
                Decision.alert_id != alert.id,
            )
        )
    radius = guards.blast_radius
    if radius is not None and scope.blast is not None:
        if radius.size is None:
            columns["blast_size"] = _count(
                sa.select(sa.func.count()).where(
                    GuardMember.scope == scope.blast_scope,
                    GuardMember.seen_at > now - timedelta(seconds=radius.lookback),
                )
            )
        since = scope.since(scope.blast_scope, now - timedelta(seconds=radius.window))
        columns["blast_runs"] = _count(
            sa.select(sa.func.count()).where(
                runs, Decision.blast_group == scope.blast, Decision.created_at > since
            )
        )
    row = session.execute(sa.select(*(c.label(name) for name, c in columns.items()))).one()
    found: dict[str, Any] = row._asdict()
    return CabCounts(
        episodes=int(found["episodes"] or 0),
        runs_in_budget=int(found["runs_in_budget"] or 0),
        last_run=found.get("last_run"),
        storm_alerts=int(found.get("storm_alerts") or 0),
        blast_size=radius.size if radius and radius.size else int(found.get("blast_size") or 0),
        blast_runs=int(found.get("blast_runs") or 0),
    )
