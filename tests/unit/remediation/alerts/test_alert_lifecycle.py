"""The alert lifecycle: one table of legal moves, and compare-and-set transitions."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.engine import make_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.remediation.alerts.lifecycle import (
    IN_PROGRESS,
    REMEDIATION_OVER,
    TRANSITIONS,
    AlertState,
    IllegalTransitionError,
    check_transition,
    lock_alert,
    sources_of,
    transition,
)
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.guards.models import TargetLock
from tests import factories

S = AlertState


def test_every_state_has_a_row_and_only_resolved_is_final() -> None:
    assert set(TRANSITIONS) == set(AlertState)
    finals = {state for state, targets in TRANSITIONS.items() if not targets}
    assert finals == {S.RESOLVED}


def test_every_episode_can_be_closed_by_alertmanager() -> None:
    for state in AlertState:
        if state is not S.RESOLVED:
            check_transition(state, S.RESOLVED)


def test_the_remediation_path() -> None:
    path = [S.RECEIVED, S.MATCHED, S.REMEDIATING, S.REMEDIATED, S.RESOLVED]
    for current, new in itertools.pairwise(path):
        check_transition(current, new)
    check_transition(S.REMEDIATING, S.FAILED)
    check_transition(S.RECEIVED, S.UNMATCHED)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.REMEDIATED, S.REMEDIATING),
        (S.FAILED, S.REMEDIATED),
        (S.UNMATCHED, S.MATCHED),
        (S.RESOLVED, S.RECEIVED),
        (S.RECEIVED, S.REMEDIATING),
        (S.REMEDIATING, S.MATCHED),
        (S.MATCHED, S.UNMATCHED),
    ],
)
def test_illegal_moves_raise(current: AlertState, new: AlertState) -> None:
    with pytest.raises(IllegalTransitionError, match=f"from {current} to {new}"):
        check_transition(current, new)


def test_groups_of_states() -> None:
    assert {S.RECEIVED, S.MATCHED, S.REMEDIATING} == IN_PROGRESS
    assert {S.UNMATCHED, S.REMEDIATED, S.FAILED, S.HELD} == REMEDIATION_OVER
    assert sources_of(S.UNMATCHED) == {S.RECEIVED}
    assert sources_of(S.REMEDIATING) == {S.MATCHED}
    assert sources_of(S.RESOLVED) == set(AlertState) - {S.RESOLVED}


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(sa.engine.make_url(f"sqlite:///{tmp_path / 'alerts.sqlite3'}"))
    Alert.__table__.create(engine)  # type: ignore[attr-defined]
    # An episode's remediation ending frees its target leases.
    TargetLock.__table__.create(engine)  # type: ignore[attr-defined]
    yield make_session_factory(engine)
    engine.dispose()


def add_alert(sessions: sessionmaker[Session], state: AlertState) -> str:
    with unit_of_work(sessions) as session:
        session.add(factories.alert(state=state.value))
    return "a" * 24


def state_of(sessions: sessionmaker[Session], alert_id: str) -> tuple[str, str | None]:
    with sessions() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert.state, alert.state_reason


def test_transition_moves_and_sets_values(sessions: sessionmaker[Session]) -> None:
    alert_id = add_alert(sessions, S.RECEIVED)
    with unit_of_work(sessions) as session:
        assert transition(session, alert_id, S.MATCHED, cab_name="disk_cleanup")
        alert = session.get(Alert, alert_id)
        assert alert is not None
        assert (alert.state, alert.cab_name) == ("matched", "disk_cleanup")
    assert state_of(sessions, alert_id) == ("matched", None)


def test_transition_is_a_compare_and_set(sessions: sessionmaker[Session]) -> None:
    alert_id = add_alert(sessions, S.RECEIVED)
    with unit_of_work(sessions) as session:
        assert transition(session, alert_id, S.UNMATCHED, {S.RECEIVED}, state_reason="no rule")
    # A second worker that saw "received" earlier loses: nothing changes.
    with unit_of_work(sessions) as session:
        assert not transition(session, alert_id, S.MATCHED, {S.RECEIVED})
    assert state_of(sessions, alert_id) == ("unmatched", "no rule")


def test_transition_refuses_an_illegal_source(sessions: sessionmaker[Session]) -> None:
    alert_id = add_alert(sessions, S.REMEDIATED)
    with unit_of_work(sessions) as session, pytest.raises(IllegalTransitionError):
        transition(session, alert_id, S.REMEDIATING, {S.MATCHED, S.REMEDIATED})
    assert state_of(sessions, alert_id) == ("remediated", None)


def test_default_sources_are_every_legal_one(sessions: sessionmaker[Session]) -> None:
    alert_id = add_alert(sessions, S.FAILED)
    with unit_of_work(sessions) as session:
        assert not transition(session, alert_id, S.REMEDIATED)
        assert transition(session, alert_id, S.RESOLVED, state_reason="kept")
    assert state_of(sessions, alert_id) == ("resolved", "kept")


def test_lock_alert_loads_fresh_values(sessions: sessionmaker[Session]) -> None:
    alert_id = add_alert(sessions, S.RECEIVED)
    with unit_of_work(sessions) as session:
        alert = lock_alert(session, alert_id)
        assert alert is not None and alert.state == "received"
        assert lock_alert(session, "b" * 24) is None
