"""Run safety's periodic pass on MariaDB with a real Alertmanager: the recovery paths the end to
end tests cannot time (a worker killed between asking Alertmanager for a silence and recording
it, or before asking), and verification's compare-and-set between two workers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.session import unit_of_work
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.rules.models import RuleDB
from poundcake.ids import new_id
from poundcake.remediation.aftercare.models import Silence
from poundcake.remediation.aftercare.silences import (
    CREATING_GRACE,
    comment_for,
    sweep_silences,
)
from poundcake.remediation.aftercare.verification import (
    FOLLOW_UP_RECOVERY,
    retry_follow_ups,
    verify_pending,
)
from poundcake.remediation.alertmanager_api import AlertmanagerClient, label_matchers
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.cabs.models import RuleExtension
from poundcake.remediation.cabs.run_safety import RunSafety
from tests.factories import alert as alert_row
from tests.integration.support.engine_stack import write_st2_conf
from tests.integration.support.guarded import schema_sessions

MAX_SECONDS = 600


@pytest.fixture
def sessions(tmp_path: Path, scratch_database: str) -> Iterator[sessionmaker[Session]]:
    conf = write_st2_conf(tmp_path / "st2.conf", scratch_database, "amqp://127.0.0.1:5672//")
    with schema_sessions(tmp_path, conf) as made:
        yield made


def add_cab(sessions: sessionmaker[Session], name: str, safety: RunSafety) -> None:
    now = datetime.now(UTC)
    with unit_of_work(sessions) as session:
        rule = RuleDB(
            id=new_id(),
            uid=f"rule:poundcake_cabs:{name}",
            ref=f"poundcake_cabs.{name}",
            name=name,
            pack="poundcake_cabs",
            trigger="poundcake.alert",
            action_ref=f"poundcake_cabs.{name}",
        )
        session.add(rule)
        session.flush()
        session.add(
            RuleExtension(
                id=new_id(),
                st2_rule_id=rule.id,
                cab_name=name,
                alert_name_pattern="^DiskFull$",
                run_safety=safety.document(),
                created_at=now,
                updated_at=now,
            )
        )


def add_alert(sessions: sessionmaker[Session], state: str, **values: Any) -> Alert:
    instance = new_id()
    row = alert_row(
        id=new_id(),
        fingerprint=instance[:16],
        state=state,
        cab_name="silenced",
        labels={"alertname": "DiskFull", "instance": instance},
        **values,
    )
    with unit_of_work(sessions) as session:
        session.add(row)
    return row


def left_creating(sessions: sessionmaker[Session], alert: Alert) -> Silence:
    """The row a worker killed right after writing it leaves (older than the grace)."""
    old = datetime.now(UTC) - CREATING_GRACE - timedelta(seconds=5)
    row = Silence(
        id=new_id(),
        alert_id=alert.id,
        request_id=alert.request_id,
        cab_name="silenced",
        state="creating",
        matchers=label_matchers(alert.labels),
        ends_at=datetime.now(UTC) + timedelta(seconds=MAX_SECONDS),
        created_at=old,
        updated_at=old,
    )
    with unit_of_work(sessions) as session:
        session.add(row)
    return row


def stored(sessions: sessionmaker[Session], alert_id: str) -> Silence | None:
    with sessions() as session:
        return session.scalars(sa.select(Silence).where(Silence.alert_id == alert_id)).first()


def test_a_silence_made_by_a_worker_killed_before_recording_it_is_expired(
    sessions: sessionmaker[Session],
    alertmanager: str,
) -> None:
    add_cab(sessions, "silenced", RunSafety(silence=True))
    client = AlertmanagerClient(alertmanager)
    alert = add_alert(sessions, "remediated")
    row = left_creating(sessions, alert)
    now = datetime.now(UTC)
    orphan = client.create_silence(
        row.matchers, now, now + timedelta(minutes=10), comment_for(row.id, alert)
    )

    sweep_silences(sessions, client, MAX_SECONDS)

    assert client.get_silence(orphan)["status"]["state"] == "expired"  # type: ignore[index]
    settled = stored(sessions, alert.id)
    assert settled is not None and settled.state == "expired" and settled.silence_id == orphan


def test_a_running_alert_whose_silence_was_never_asked_for_gets_one(
    sessions: sessionmaker[Session],
    alertmanager: str,
) -> None:
    add_cab(sessions, "silenced", RunSafety(silence=True))
    client = AlertmanagerClient(alertmanager)
    alert = add_alert(sessions, "remediating")
    left_creating(sessions, alert)

    sweep_silences(sessions, client, MAX_SECONDS)  # the stale row goes
    assert stored(sessions, alert.id) is None
    sweep_silences(sessions, client, MAX_SECONDS)  # and a silence is made

    made = stored(sessions, alert.id)
    assert made is not None and made.state == "active" and made.silence_id is not None
    found = client.get_silence(made.silence_id)
    assert found is not None and found["status"]["state"] == "active"
    ends = datetime.fromisoformat(found["endsAt"].replace("Z", "+00:00"))
    assert ends <= datetime.now(UTC) + timedelta(seconds=MAX_SECONDS)


def test_two_workers_verify_one_episode_once(sessions: sessionmaker[Session]) -> None:
    """Both see the pending episode; one moves it, and only that one runs on_unverified."""
    add_cab(
        sessions,
        "silenced",
        RunSafety(verify_within=60, on_unverified="other"),
    )
    past = datetime.now(UTC) - timedelta(seconds=1)
    alert = add_alert(sessions, "remediated", verification="pending", verify_by=past)
    started: list[str] = []

    class Engine:
        def run_cab(
            self, cab_name: str, alert: dict[str, object], request_id: str, alert_id: str
        ) -> str:
            started.append(cab_name)
            raise RuntimeError("stop after counting")

        def find_execution(self, action_ref: str, context_key: str, value: str) -> str | None:
            raise AssertionError("nothing was asked for before")

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            verify_pending(sessions, None, Engine())
        except RuntimeError as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert started == ["other"] and len(errors) == 1
    with sessions() as session:
        row = session.get(Alert, alert.id)
        assert row is not None and row.verification == "unverified"
        assert "no resolved notification" in (row.verification_reason or "")


def engine_execution(sessions: sessionmaker[Session], action: str) -> str:
    """An execution row in the engine's table (what the engine's API would have written)."""
    with unit_of_work(sessions) as session:
        row = ExecutionDB(
            id=new_id(),
            action=action,
            runner_type="steps",
            status="requested",
            start_timestamp=datetime.now(UTC),
        )
        session.add(row)
    return row.id


class RecordingEngine:
    """The engine's side of ``on_unverified`` runs: what was looked for and started."""

    def __init__(self, sessions: sessionmaker[Session], existing: str | None) -> None:
        self.sessions = sessions
        self.existing = existing
        self.looked: list[tuple[str, str, str]] = []
        self.started: list[str] = []

    def run_cab(
        self, cab_name: str, alert: dict[str, object], request_id: str, alert_id: str
    ) -> str:
        self.started.append(cab_name)
        return engine_execution(self.sessions, f"poundcake_cabs.{cab_name}")

    def find_execution(self, action_ref: str, context_key: str, value: str) -> str | None:
        self.looked.append((action_ref, context_key, value))
        return self.existing


@pytest.mark.parametrize("reached_the_engine", [True, False])
def test_an_on_unverified_run_whose_asker_died_is_asked_for_once_more(
    sessions: sessionmaker[Session], reached_the_engine: bool
) -> None:
    """A claim left without a run: after the recovery time the next pass looks for the run in
    the engine (the dead worker's request may have reached it) and asks only if it is not
    there; a younger claim is left alone."""
    add_cab(sessions, "silenced", RunSafety(verify_within=60, on_unverified="other"))
    claimed = datetime.now(UTC) - FOLLOW_UP_RECOVERY - timedelta(seconds=5)
    alert = add_alert(
        sessions,
        "remediated",
        verification="unverified",
        verification_reason="still firing",
        follow_up_requested_at=claimed,
    )
    young = add_alert(
        sessions,
        "remediated",
        verification="unverified",
        verification_reason="still firing",
        follow_up_requested_at=datetime.now(UTC),
    )
    existing = engine_execution(sessions, "poundcake_cabs.other") if reached_the_engine else None
    engine = RecordingEngine(sessions, existing)

    assert retry_follow_ups(sessions, engine) == 1

    assert engine.looked == [("poundcake_cabs.other", "on_unverified_for", alert.id)]
    assert engine.started == ([] if reached_the_engine else ["other"])
    with sessions() as session:
        row = session.get(Alert, alert.id)
        assert row is not None and row.follow_up_execution_id is not None
        if existing:
            assert row.follow_up_execution_id == existing
        assert 'on_unverified: CAB "other" started' in (row.verification_reason or "")
        untouched = session.get(Alert, young.id)
        assert untouched is not None and untouched.follow_up_execution_id is None
    assert retry_follow_ups(sessions, engine) == 0
