"""The guard step on the embedded SQLite default: budgets, target leases and their release.

SQLite has no row locks (its writers are serialised by the database lock), so the guards' rows
are created with ``INSERT OR IGNORE`` and upserts; this runs the dispatch stage's decision there.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import DatabaseTarget, PoundCakeConfig, Settings, load_st2_config
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.migrate import setup_engine_schema, setup_poundcake_schema
from poundcake.db.retry import in_transaction
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.public import RuleDB
from poundcake.ids import new_id
from poundcake.remediation.alerts.lifecycle import AlertState, transition
from poundcake.remediation.alerts.models import AlertDelivery
from poundcake.remediation.cabs.definition import parse_cab
from poundcake.remediation.cabs.models import RuleExtension
from poundcake.remediation.cabs.pack import rule_criteria
from poundcake.remediation.dispatch import DeliveryPlan, decide
from poundcake.remediation.guards.models import Decision, TargetLock
from poundcake.remediation.guards.service import GuardLimits
from tests import factories

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
    st2 = load_st2_config(conf)
    setup_engine_schema(st2)
    settings = Settings(_env_file=None, POUNDCAKE_DATA_DIR=str(tmp_path / "data"))  # type: ignore[call-arg]
    config = PoundCakeConfig(
        settings=settings,
        database=DatabaseTarget(url=st2.database.url, setting="test"),
        engine_database=st2.database,
    )
    setup_poundcake_schema(config)
    db_engine = make_poundcake_engine(config)
    made = make_session_factory(db_engine)
    apply_cab(made)
    yield made
    db_engine.dispose()


def apply_cab(sessions: sessionmaker[Session]) -> None:
    """The CAB's rule and rule extension, as ``poundcake cabs apply`` leaves them."""
    now = datetime.now(UTC)
    rule_id = new_id()
    with unit_of_work(sessions) as session:
        session.add(
            RuleDB(
                id=rule_id,
                uid=f"rule:poundcake_cabs:{CAB.name}",
                ref=f"poundcake_cabs.{CAB.name}",
                name=CAB.name,
                pack="poundcake_cabs",
                enabled=True,
                trigger="poundcake.alert",
                criteria=rule_criteria(CAB),
                action={"ref": f"poundcake_cabs.{CAB.name}"},
                action_ref=f"poundcake_cabs.{CAB.name}",
            )
        )
        session.flush()
        session.add(
            RuleExtension(
                id=new_id(),
                st2_rule_id=rule_id,
                cab_name=CAB.name,
                alert_name_pattern=CAB.alert_name_pattern,
                severity_filter=[],
                stop_on_first_failure=True,
                steps=[step.document() for step in CAB.steps],
                guards=CAB.guards.document(),
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )


def episode(sessions: sessionmaker[Session], instance: str) -> tuple[str, int]:
    identifier = uuid.uuid4().hex[:24]
    labels = {"alertname": "SqliteGuard", "instance": instance}
    with unit_of_work(sessions) as session:
        session.add(
            factories.alert(
                id=identifier,
                fingerprint=uuid.uuid4().hex[:16],
                alert_name="SqliteGuard",
                labels=labels,
            )
        )
        delivery = AlertDelivery(
            alert_id=identifier,
            request_id=f"req-{identifier[:8]}",
            alertmanager_status="firing",
            received_at=datetime.now(UTC),
            attempts=0,
        )
        session.add(delivery)
        session.flush()
        return identifier, delivery.id


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
