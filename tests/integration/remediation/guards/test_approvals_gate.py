"""Approvals in the dispatch stage on MariaDB: the wait, answers once under concurrency, the
decision after an approval, a denial and an expiry.

The engine's side (inquiries, ``st2 inquiry respond``) is driven end to end in
``tests/e2e/test_guards.py``; here approvals are answered before their inquiry exists, which
PoundCake settles in the database alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.retry import in_transaction
from poundcake.db.session import unit_of_work
from poundcake.exceptions import ConflictError
from poundcake.remediation.alerts.models import Alert, AlertDelivery
from poundcake.remediation.approvals import service
from poundcake.remediation.approvals.inquiries import answer
from poundcake.remediation.approvals.models import Approval
from poundcake.remediation.cabs.definition import parse_cab
from poundcake.remediation.dispatch import APPROVAL_OUTCOME, DeliveryPlan, decide
from poundcake.remediation.engine_api import EngineClient
from poundcake.remediation.guards.models import Decision, TargetLock
from poundcake.remediation.guards.service import GuardLimits
from tests.integration.support.engine_stack import write_st2_conf
from tests.integration.support.guarded import apply_cab, firing_episode, schema_sessions

CAB = parse_cab(
    {
        "name": "gated",
        "alert_name_pattern": "^Gated$",
        "approval": {"severity": "critical"},
        "approval_ttl": "10m",
        "target": "{{ alert.labels.instance }}",
        "steps": [{"action": "core.local", "parameters": {"cmd": "true"}}],
    }
)
LIMITS = GuardLimits(lock_retry_seconds=0.1)


@pytest.fixture
def sessions(tmp_path: Path, scratch_database: str) -> Iterator[sessionmaker[Session]]:
    conf = write_st2_conf(tmp_path / "st2.conf", scratch_database, "amqp://127.0.0.1:5672//")
    with schema_sessions(tmp_path, conf) as made:
        apply_cab(made, CAB)
        yield made


def episode(
    sessions: sessionmaker[Session], instance: str, severity: str = "critical"
) -> tuple[str, int]:
    return firing_episode(sessions, "Gated", instance, severity)


def decided(sessions: sessionmaker[Session], delivery_id: int) -> DeliveryPlan:
    return in_transaction(sessions, lambda session: decide(session, delivery_id, LIMITS))


def logged(sessions: sessionmaker[Session], alert_id: str) -> list[tuple[str, str, str]]:
    with sessions() as session:
        rows = session.scalars(
            sa.select(Decision).where(Decision.alert_id == alert_id).order_by(Decision.id)
        )
        return [(row.decision, row.reason, row.detail or "") for row in rows]


def approval_of(sessions: sessionmaker[Session], alert_id: str) -> Approval:
    with sessions() as session:
        found = session.scalar(sa.select(Approval).where(Approval.alert_id == alert_id))
        assert found is not None
        return found


def test_an_approved_cab_waits_then_runs_and_takes_its_target(
    sessions: sessionmaker[Session],
) -> None:
    alert_id, delivery_id = episode(sessions, "db-1")
    plan = decided(sessions, delivery_id)
    assert not plan.dispatches and plan.retry_after is None and plan.hold_until is not None
    approval = approval_of(sessions, alert_id)
    assert (approval.state, approval.reason, approval.inquiry_id) == (
        "pending",
        "if severity=critical",
        None,
    )
    assert plan.hold_until == approval.expires_at
    # Decided again while pending (the relay's fallback): no new decision, nothing leased.
    assert not decided(sessions, delivery_id).dispatches
    [(decision, reason, detail)] = logged(sessions, alert_id)
    assert (decision, reason) == ("waiting", "approval")
    assert f"approval {approval.id} asked (if severity=critical)" in detail
    with sessions() as session:
        delivery = session.get(AlertDelivery, delivery_id)
        assert delivery is not None and delivery.processed_at is None
        assert delivery.outcome == APPROVAL_OUTCOME
        assert session.scalars(sa.select(TargetLock)).all() == []

    # Two answers at once (two API processes): exactly one wins, the other is refused.
    results: list[str] = []
    barrier = threading.Barrier(2)

    def answer(approved: bool, by: str) -> None:
        barrier.wait()
        try:
            in_transaction(
                sessions,
                lambda session: service.record_answer(
                    session, approval.id, approved=approved, by=by, via="api"
                ),
            )
            results.append(f"won:{by}")
        except ConflictError as error:
            results.append(f"refused:{error}")

    threads = [
        threading.Thread(target=answer, args=(True, "alice")),
        threading.Thread(target=answer, args=(False, "bob")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [r for r in results if r.startswith("won:")]
    refused = [r for r in results if r.startswith("refused:")]
    assert len(won) == 1 and len(refused) == 1, results
    winner = approval_of(sessions, alert_id)
    assert f"approval {approval.id} {winner.state} by {winner.answered_by} via api" in refused[0]
    with sessions() as session:
        delivery = session.get(AlertDelivery, delivery_id)
        assert delivery is not None and delivery.relayed_at is None  # handed back to the relay

    plan = decided(sessions, delivery_id)
    if winner.state == "approved":
        assert plan.dispatches and plan.payload is not None
        assert plan.payload["admitted_cabs"] == ["gated"]
        assert logged(sessions, alert_id)[-1][:2] == ("run", "admitted")
        assert "approved by alice via api" in logged(sessions, alert_id)[-1][2]
        with sessions() as session:
            [lease] = session.scalars(sa.select(TargetLock)).all()
            assert (lease.target, lease.alert_id) == ("db-1", alert_id)
    else:
        assert not plan.dispatches
        assert logged(sessions, alert_id)[-1][:2] == ("held", "approval")


def test_denied_and_expired_approvals_hold_the_episode(sessions: sessionmaker[Session]) -> None:
    denied, denied_delivery = episode(sessions, "db-2")
    expired, expired_delivery = episode(sessions, "db-3")
    decided(sessions, denied_delivery)
    decided(sessions, expired_delivery)
    with unit_of_work(sessions) as session:
        service.record_answer(
            session,
            approval_of(sessions, denied).id,
            approved=False,
            by="bob",
            via="cli",
            comment="change freeze",
        )
    plan = decided(sessions, denied_delivery)
    assert not plan.dispatches and "held by the guards" in (plan.outcome or "")
    assert logged(sessions, denied)[-1][:2] == ("held", "approval")
    assert "denied by bob via cli: change freeze" in logged(sessions, denied)[-1][2]
    with sessions() as session:
        alert = session.get(Alert, denied)
        assert alert is not None and alert.state == "held"

    # Past its ttl: the periodic pass expires it and hands the delivery back.
    later = datetime.now(UTC) + timedelta(minutes=11)
    swept = in_transaction(sessions, lambda session: service.expire_due(session, now=later))
    assert swept.approval_ids == [approval_of(sessions, expired).id]
    assert swept.delivery_ids == [expired_delivery]
    assert not decided(sessions, expired_delivery).dispatches
    assert logged(sessions, expired)[-1][:2] == ("held", "approval")
    assert "expired unanswered (denied)" in logged(sessions, expired)[-1][2]
    with pytest.raises(ConflictError, match="expired unanswered"):
        in_transaction(
            sessions,
            lambda session: service.record_answer(
                session, approval_of(sessions, expired).id, approved=True, by="x", via="api"
            ),
        )


def test_an_answer_after_the_ttl_is_refused_as_expired(
    sessions: sessionmaker[Session],
) -> None:
    alert_id, delivery_id = episode(sessions, "db-5")
    decided(sessions, delivery_id)
    approval = approval_of(sessions, alert_id)
    with unit_of_work(sessions) as session:
        session.execute(
            sa.update(Approval)
            .where(Approval.id == approval.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    # Not asked in the engine yet: the answer is settled in the database, and never reaches it.
    engine_api = EngineClient("http://127.0.0.1:9/v1")
    try:
        with pytest.raises(ConflictError, match=f"approval {approval.id} expired unanswered"):
            answer(sessions, engine_api, approval.id, approved=True, by="late", via="cli")
    finally:
        engine_api.close()
    assert approval_of(sessions, alert_id).state == "expired"
    assert not decided(sessions, delivery_id).dispatches
    assert logged(sessions, alert_id)[-1][:2] == ("held", "approval")


def test_a_condition_that_does_not_fit_runs_without_asking(
    sessions: sessionmaker[Session],
) -> None:
    alert_id, delivery_id = episode(sessions, "db-4", severity="warning")
    assert decided(sessions, delivery_id).dispatches
    assert [d[:2] for d in logged(sessions, alert_id)] == [("run", "admitted")]
    with sessions() as session:
        assert session.scalars(sa.select(Approval)).all() == []
