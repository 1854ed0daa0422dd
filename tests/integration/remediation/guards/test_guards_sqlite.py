"""The guard step on the embedded SQLite default: budgets, target leases and their release.

SQLite has no row locks (its writers are serialised by the database lock), so the guards' rows
are created with ``INSERT OR IGNORE`` and upserts; this runs the dispatch stage's decision there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.retry import in_transaction
from poundcake.db.session import unit_of_work
from poundcake.remediation.alerts.lifecycle import AlertState, transition
from poundcake.remediation.cabs.definition import parse_cab
from poundcake.remediation.dispatch import DeliveryPlan, decide
from poundcake.remediation.guards.models import Decision, TargetLock
from poundcake.remediation.guards.service import GuardLimits
from tests.integration.support.guarded import apply_cab, firing_episode, schema_sessions

CAB = parse_cab(
    {
        "name": "sqlite_guarded",
        "alert_name_pattern": "^SqliteGuard$",
        "max_runs": 2,
        "target": "{{ alert.labels.instance }}",
        "steps": [{"action": "core.local", "parameters": {"cmd": "true"}}],
    }
)
LIMITS = GuardLimits(lock_retry_seconds=0.1)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    conf = tmp_path / "st2.conf"
    conf.write_text(f"[database]\nbackend = sqlite\ndb_name = {tmp_path / 'pc.sqlite3'}\n")
    with schema_sessions(tmp_path, conf) as made:
        apply_cab(made, CAB)
        yield made


def episode(sessions: sessionmaker[Session], instance: str) -> tuple[str, int]:
    return firing_episode(sessions, "SqliteGuard", instance)


def decided(sessions: sessionmaker[Session], delivery_id: int) -> DeliveryPlan:
    return in_transaction(sessions, lambda session: decide(session, delivery_id, LIMITS))


def rows(sessions: sessionmaker[Session], model: Any) -> list[Any]:
    with sessions() as session:
        return list(session.scalars(sa.select(model)))


def test_budget_and_target_lease_on_sqlite(sessions: sessionmaker[Session]) -> None:
    first, first_delivery = episode(sessions, "host-a")
    plan = decided(sessions, first_delivery)
    assert plan.dispatches and plan.payload is not None
    assert plan.payload["admitted_cabs"] == ["sqlite_guarded"]
    [lease] = rows(sessions, TargetLock)
    assert (lease.target, lease.alert_id) == ("host-a", first)

    second, second_delivery = episode(sessions, "host-a")
    waiting = decided(sessions, second_delivery)
    assert waiting.retry_after == LIMITS.lock_retry_seconds and not waiting.dispatches
    assert "is locked by CAB sqlite_guarded" in (waiting.outcome or "")

    # The first episode's remediation ends: its lease goes, and the second one may run.
    with unit_of_work(sessions) as session:
        transition(session, first, AlertState.MATCHED, {AlertState.RECEIVED})
        transition(session, first, AlertState.REMEDIATED)
    assert rows(sessions, TargetLock) == []
    assert decided(sessions, second_delivery).dispatches

    # Two runs in the hour: a third episode (another target) is held by the budget.
    third, third_delivery = episode(sessions, "host-b")
    held = decided(sessions, third_delivery)
    assert not held.dispatches and "held by the guards" in (held.outcome or "")
    decisions = [(d.alert_id, d.decision, d.reason) for d in rows(sessions, Decision)]
    assert decisions == [
        (first, "run", "admitted"),
        (second, "waiting", "lock"),
        (second, "run", "admitted"),
        (third, "held", "budget"),
    ]
