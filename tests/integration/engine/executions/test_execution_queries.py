"""Execution lists, totals, descendants, output, re-runs and API status updates on real
databases (a scratch MariaDB database, and SQLite for the portable queries)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import St2Config
from poundcake.db.engine import make_st2_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.executions.documents import Projection, execution_document
from poundcake.engine.executions.models import ExecutionDB, ExecutionOutputDB, LiveActionDB
from poundcake.engine.executions.queries import (
    ExecutionFilters,
    count_executions,
    descendants,
    execution_output,
    fetch_execution,
    list_executions,
)
from poundcake.engine.executions.rerun import rerun_execution
from poundcake.engine.executions.sealed import open_parameters
from poundcake.engine.executions.service import (
    add_children,
    claim,
    request_execution,
    schedule,
)
from poundcake.engine.executions.states import IllegalTransitionError
from poundcake.engine.executions.updates import update_execution
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.exceptions import ConfigurationError, NotFoundError, ValidationError
from poundcake.ids import new_id
from tests import factories
from tests.integration.support.datastore_helpers import engine_config

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
USERS = ("alice", "bob", "carol")
STATUSES = ("succeeded", "failed", "succeeded", "timeout")


@pytest.fixture(params=["mariadb", "sqlite"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> St2Config:
    database = request.getfixturevalue("scratch_database") if request.param == "mariadb" else None
    return engine_config(tmp_path, database=database)


@pytest.fixture
def sessions(config: St2Config) -> Iterator[sessionmaker[Session]]:
    engine = make_st2_engine(config, pool_size=2)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        factories.runner_type(session, "noop")
        factories.runner_type(session, "local-shell-cmd")
        factories.pack(session, "core")
        factories.action(session, "core.noop", "noop", {"note": {"type": "string"}})
        factories.action(
            session,
            "core.secret",
            "noop",
            {"token": {"type": "string", "secret": True}, "note": {"type": "string"}},
        )
        factories.action(session, "core.local", "local-shell-cmd")
    yield factory
    engine.dispose()


def request(session: Session, action: str = "core.noop", **kwargs: object) -> str:
    return request_execution(session, action_ref=action, user="tester", **kwargs).execution_id  # type: ignore[arg-type]


def seed(sessions: sessionmaker[Session], count: int = 24) -> list[str]:
    """``count`` executions with known times (two share one), users, statuses and children."""
    ids = []
    with unit_of_work(sessions) as session:
        for number in range(count):
            parent = ids[number - 1] if number % 6 == 5 else None
            ids.append(request(session, parent=parent, parameters={"note": str(number)}))
        for number, execution_id in enumerate(ids):
            moment = EPOCH + timedelta(minutes=min(number, 20))
            session.execute(
                sa.update(ExecutionDB)
                .where(ExecutionDB.id == execution_id)
                .values(
                    start_timestamp=moment,
                    status=STATUSES[number % len(STATUSES)],
                    context_user=USERS[number % len(USERS)],
                )
            )
    return ids


def rows(session: Session, projection: Projection, **kwargs: object) -> list[dict[str, object]]:
    page = list_executions(session, columns=projection.columns(), **kwargs)  # type: ignore[arg-type]
    return [execution_document(row._mapping, projection) for row in page.rows]


def expected_order(sessions: sessionmaker[Session]) -> list[tuple[datetime, str, str | None]]:
    with sessions() as session:
        found = session.execute(
            sa.select(ExecutionDB.start_timestamp, ExecutionDB.id, ExecutionDB.parent)
        ).all()
    return sorted(((row[0], row[1], row[2]) for row in found), reverse=True)


def test_pages_are_newest_first_and_cover_everything_once(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions)
    order = [entry[1] for entry in expected_order(sessions)]
    projection = Projection.parse("id,status", None)
    seen: list[str] = []
    with sessions() as session:
        for offset in range(0, 30, 5):
            page = list_executions(
                session,
                filters=ExecutionFilters(),
                columns=projection.columns(),
                limit=5,
                offset=offset,
            )
            assert page.total == 24
            seen += [row.id for row in page.rows]
        oldest = list_executions(
            session, filters=ExecutionFilters(), columns=projection.columns(), newest=False
        )
    assert seen == order
    assert [row.id for row in oldest.rows] == list(reversed(order))
    assert oldest.total == 24


def test_filters_and_totals_match_the_rows(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    everything = expected_order(sessions)
    top_level = [entry[1] for entry in everything if entry[2] is None]
    projection = Projection.parse("id,status,context.user,action.ref,parent", None)
    with sessions() as session:
        listed = rows(session, projection, filters=ExecutionFilters(parent="null"), limit=None)
        assert [row["id"] for row in listed] == top_level
        assert all("parent" not in row for row in listed)
        failed = ExecutionFilters(parent="null", status="failed")
        page = list_executions(session, filters=failed, columns=projection.columns(), limit=2)
        expected = [
            row["id"] for row in listed if row["status"] == "failed"
        ]  # from the full top-level list
        assert [row.id for row in page.rows] == expected[:2]
        assert page.total == len(expected) == count_executions(session, failed)
        by_user = rows(session, projection, filters=ExecutionFilters(user="bob"), limit=None)
        assert by_user and {row["context"]["user"] for row in by_user} == {"bob"}  # type: ignore[index]
        children = rows(
            session, projection, filters=ExecutionFilters(parent=everything[0][1]), limit=None
        )
        assert children == []
        later = ExecutionFilters(timestamp_gt=EPOCH + timedelta(minutes=19))
        assert count_executions(session, later) == 4
        assert count_executions(session, ExecutionFilters(action="core.local")) == 0


def test_descendants_are_depth_first(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        root = request(session)
        first = request(session, parent=root)
        grandchild = request(session, parent=first)
        second = request(session, parent=root)
    with sessions() as session:
        columns = Projection.parse("id,parent", None).columns()
        every = [row.id for row in descendants(session, root, columns)]
        one_level = [row.id for row in descendants(session, root, columns, depth=1)]
        parent_doc = fetch_execution(session, root, Projection.everything().columns())
    assert every == [first, grandchild, second]
    assert one_level == [first, second]
    assert parent_doc is not None
    assert execution_document(parent_doc._mapping, Projection.everything())["children"] == [
        first,
        second,
    ]


def test_children_reach_a_parent_already_loaded(sessions: sessionmaker[Session]) -> None:
    """A child is appended to its parent's list in the database; a parent this unit of work
    already holds (as a workflow engine does) reads the list again."""
    with unit_of_work(sessions) as session:
        root = request(session)
        loaded = session.get(ExecutionDB, root)
        assert loaded is not None and loaded.children == []
        first = request(session, parent=root)
        second = request(session, parent=root)
        assert loaded.children == [first, second]
    with sessions() as session:
        stored = session.get(ExecutionDB, root)
        assert stored is not None and stored.children == [first, second]
    with pytest.raises(NotFoundError, match="parent execution"), unit_of_work(sessions) as session:
        request(session, parent=new_id())


def test_children_appended_together_keep_their_order(sessions: sessionmaker[Session]) -> None:
    """A workflow engine appends a unit of work's children in one statement per 60."""
    ids = [new_id() for _ in range(450)]
    with unit_of_work(sessions) as session:
        root = request(session)
        add_children(session, root, ids[:1])
        add_children(session, root, ids[1:])
        add_children(session, root, [])
    with sessions() as session:
        stored = session.get(ExecutionDB, root)
        assert stored is not None and stored.children == ids


def test_output_in_arrival_order_by_stream(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        execution_id = request(session)
        for output_type, data in (("stdout", "a\n"), ("stderr", "oops\n"), ("stdout", "b\n")):
            session.add(
                ExecutionOutputDB(
                    id=new_id(),
                    execution_id=execution_id,
                    action_ref="core.noop",
                    runner_ref="noop",
                    timestamp=EPOCH,
                    output_type=output_type,
                    data=data,
                )
            )
            session.flush()
    with sessions() as session:
        assert execution_output(session, execution_id) == "a\noops\nb\n"
        assert execution_output(session, execution_id, "all") == "a\noops\nb\n"
        assert execution_output(session, execution_id, "stdout") == "a\nb\n"
        assert execution_output(session, "0" * 24) == ""


def test_rerun_merges_parameters_and_points_back(sessions: sessionmaker[Session]) -> None:
    cipher = DatastoreCipher(os.urandom(32))
    with unit_of_work(sessions) as session:
        first = request(
            session, "core.secret", parameters={"token": "s3cret", "note": "one"}, cipher=cipher
        )
        again = rerun_execution(
            session, execution_id=first, user="alice", parameters={"note": "two"}, cipher=cipher
        )
        only_new = rerun_execution(
            session, execution_id=first, user="alice", parameters={"note": "x"}, merge=False
        )
    with sessions() as session:
        rerun = session.get(ExecutionDB, again.execution_id)
        bare = session.get(ExecutionDB, only_new.execution_id)
        assert rerun is not None and bare is not None
        assert "s3cret" not in json.dumps(rerun.parameters)
        assert "s3cret" not in json.dumps(rerun.liveaction)
        names = {"token"}
        assert open_parameters(rerun.parameters, names, cipher) == {
            "token": "s3cret",
            "note": "two",
        }
        liveaction = session.get(LiveActionDB, rerun.liveaction_id)
        assert liveaction is not None
        assert open_parameters(liveaction.parameters, names, cipher)["token"] == "s3cret"
        assert rerun.context["re-run"] == {"ref": first}
        assert rerun.context_user == "alice"
        assert rerun.status == "requested"
        assert bare.parameters == {"note": "x"}
    with unit_of_work(sessions) as session, pytest.raises(ValidationError, match="Orquesta"):
        rerun_execution(session, execution_id=first, user="alice", tasks=["t1"])
    with unit_of_work(sessions) as session, pytest.raises(ValidationError, match="encrypted"):
        rerun_execution(session, execution_id=first, user="alice")
    with unit_of_work(sessions) as session, pytest.raises(ConfigurationError, match="key"):
        request(session, "core.secret", parameters={"token": "s3cret"})


def test_a_rerun_takes_the_old_values_as_text_and_renders_only_new_ones(
    sessions: sessionmaker[Session],
) -> None:
    """An alert's label that reads like a template reached the step as data; re-running the
    step (the UI's re-run button) must not render it now."""
    with unit_of_work(sessions) as session:
        first = request(session, "core.noop", parameters={"note": "{{ 6 * 7 }}"}, rendered=True)
        again = rerun_execution(session, execution_id=first, user="alice")
        changed = rerun_execution(
            session, execution_id=first, user="alice", parameters={"note": "{{ 6 * 7 }}"}
        )
    with sessions() as session:
        kept = session.get(ExecutionDB, again.execution_id)
        rendered = session.get(ExecutionDB, changed.execution_id)
        assert kept is not None and rendered is not None
        assert kept.parameters == {"note": "{{ 6 * 7 }}"}
        assert rendered.parameters == {"note": "42"}  # a value given now is rendered, as run


def test_show_secrets_opens_sealed_parameters(sessions: sessionmaker[Session]) -> None:
    cipher = DatastoreCipher(os.urandom(32))
    with unit_of_work(sessions) as session:
        execution_id = request(
            session, "core.secret", parameters={"token": "s3cret", "note": "n"}, cipher=cipher
        )
    everything = Projection.everything()
    with sessions() as session:
        row = fetch_execution(session, execution_id, everything.columns())
        assert row is not None
        masked = execution_document(row._mapping, everything, cipher=cipher)
        shown = execution_document(row._mapping, everything, mask=False, cipher=cipher)
        sealed = execution_document(row._mapping, everything, mask=False)
        wrong = DatastoreCipher(os.urandom(32))
        kept = execution_document(row._mapping, everything, mask=False, cipher=wrong)
    assert masked["parameters"] == {"token": "********", "note": "n"}
    assert shown["parameters"] == {"token": "s3cret", "note": "n"}
    assert shown["liveaction"]["parameters"] == {"token": "s3cret", "note": "n"}
    assert set(sealed["parameters"]["token"]) == {"__secret__"}
    assert kept["parameters"] == sealed["parameters"]


def running(sessions: sessionmaker[Session], action: str = "core.noop") -> ExecutionDB:
    with unit_of_work(sessions) as session:
        requested = request_execution(session, action_ref=action, user="tester")
        schedule(session, requested.liveaction_id)
        claim(session, [requested.liveaction_id], owner="test-runner", lease_seconds=60)
        execution = session.get(ExecutionDB, requested.execution_id)
        assert execution is not None and execution.status == "running"
        session.expunge(execution)
        return execution


def test_status_updates_follow_stackstorm(sessions: sessionmaker[Session]) -> None:
    execution = running(sessions)
    with unit_of_work(sessions) as session, pytest.raises(ValidationError) as refused:
        update_execution(session, execution.id, status="pausing", user="alice")
    assert str(refused.value) == (
        f'Failed updating execution. Unable to pause liveaction "{execution.liveaction_id}" '
        'because it is not supported by the "noop" runner.'
    )
    with unit_of_work(sessions) as session, pytest.raises(IllegalTransitionError):
        update_execution(session, execution.id, status="requested", user="alice")
    with unit_of_work(sessions) as session:
        done = update_execution(
            session, execution.id, status="succeeded", user="alice", result={"answer": 42}
        )
        assert done.status == "succeeded"
        assert done.result == {"answer": 42}
        assert done.result_size == len('{"answer": 42}')
        assert done.end_timestamp is not None
    with unit_of_work(sessions) as session, pytest.raises(ValidationError) as completed:
        update_execution(session, execution.id, status="failed", user="alice")
    assert str(completed.value) == "Execution is already in completed state."


def test_cancel_through_an_update(sessions: sessionmaker[Session]) -> None:
    execution = running(sessions)
    with unit_of_work(sessions) as session:
        canceling = update_execution(session, execution.id, status="canceled", user="alice")
        assert canceling.status == "canceling"
        assert canceling.result == {"message": "Action canceled by user.", "user": "alice"}
    with unit_of_work(sessions) as session:
        canceled = update_execution(session, execution.id, status="canceled", user="runner")
        assert canceled.status == "canceled"
        assert [entry["status"] for entry in canceled.log][-2:] == ["canceling", "canceled"]
