"""Retention on a real MariaDB database: what the garbage collector removes, what it keeps,
in how many batches, and that intake goes on while it works."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.session import unit_of_work
from poundcake.engine.executions.models import ExecutionDB, ExecutionOutputDB, LiveActionDB
from poundcake.engine.executions.service import request_execution
from poundcake.engine.garbage.process import GarbageCollector, GarbageCollectorSettings
from poundcake.engine.rules.models import RuleEnforcementDB
from poundcake.engine.runtime import EngineRuntime, make_runtime
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.ids import new_id
from tests import factories
from tests.integration.support.datastore_helpers import engine_config
from tests.integration.support.mariadb import admin_sql

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=30)
YOUNG = NOW - timedelta(days=1)
TTL = 7.0
FINISHED = ("succeeded", "failed", "timeout", "canceled", "abandoned")
UNFINISHED = (
    "requested",
    "scheduled",
    "delayed",
    "running",
    "canceling",
    "pending",
    "pausing",
    "paused",
    "resuming",
)
PROCESS_LOGGER = "poundcake.engine.garbage.process"
BATCH_MESSAGE = "Removed %s of %s in one batch (%d read)"
NO_TTL = GarbageCollectorSettings(
    sleep_delay=0,
    action_executions_ttl=None,
    action_executions_output_ttl=None,
    trigger_instances_ttl=None,
)


@pytest.fixture
def runtime(tmp_path: Path, scratch_database: str) -> Iterator[EngineRuntime]:
    built = make_runtime(engine_config(tmp_path, database=scratch_database), pool_size=6)
    with unit_of_work(built.sessions) as session:
        factories.runner_type(session, "noop")
        factories.pack(session, "core")
        factories.action(session, "core.noop", "noop")
    yield built
    built.close()


def execution(
    session: Session,
    *,
    status: str,
    started: datetime,
    ended: datetime | None = None,
    parent: str | None = None,
    outputs: tuple[datetime, ...] = (),
) -> str:
    """Request an execution, then move it to ``status`` at the given times, with output."""
    requested = request_execution(session, action_ref="core.noop", user="tester", parent=parent)
    times = {"status": status, "start_timestamp": started, "end_timestamp": ended}
    session.execute(
        sa.update(ExecutionDB).where(ExecutionDB.id == requested.execution_id).values(**times)
    )
    session.execute(
        sa.update(LiveActionDB).where(LiveActionDB.id == requested.liveaction_id).values(**times)
    )
    for moment in outputs:
        session.add(
            ExecutionOutputDB(
                id=new_id(),
                execution_id=requested.execution_id,
                action_ref="core.noop",
                runner_ref="noop",
                timestamp=moment,
                output_type="stdout",
                data="line\n",
            )
        )
    session.flush()
    return requested.execution_id


def finished(session: Session, *, parent: str | None = None, at: datetime = OLD) -> str:
    return execution(session, status="succeeded", started=at, ended=at, parent=parent)


def trigger_instance(session: Session, *, status: str, occurred: datetime) -> str:
    row = TriggerInstanceDB(
        id=new_id(), trigger="core.st2.webhook", payload={}, occurrence_time=occurred, status=status
    )
    session.add(row)
    session.flush()
    return row.id


def enforcement(session: Session, *, trigger_instance_id: str, execution_id: str | None) -> str:
    row = RuleEnforcementDB(
        id=new_id(),
        trigger_instance_id=trigger_instance_id,
        execution_id=execution_id,
        rule={"ref": "core.audit"},
        rule_ref="core.audit",
        enforced_at=OLD,
        status="succeeded",
    )
    session.add(row)
    session.flush()
    return row.id


def ids(runtime: EngineRuntime, column: sa.orm.InstrumentedAttribute[str]) -> set[str]:
    with runtime.sessions() as session:
        return set(session.scalars(sa.select(column)))


def liveaction_of(runtime: EngineRuntime, execution_ids: set[str]) -> set[str]:
    with runtime.sessions() as session:
        found = session.scalars(
            sa.select(ExecutionDB.liveaction_id).where(ExecutionDB.id.in_(execution_ids))
        )
        return {liveaction for liveaction in found if liveaction}


def collector(runtime: EngineRuntime, **settings: object) -> GarbageCollector:
    return GarbageCollector(runtime, replace(NO_TTL, **settings))  # type: ignore[arg-type]


def batches(caplog: pytest.LogCaptureFixture, kind: str) -> list[int]:
    """What each logged batch of ``kind`` read."""
    return [
        int(str(record.args[2]))
        for record in caplog.records
        if record.name == PROCESS_LOGGER
        and record.msg == BATCH_MESSAGE
        and isinstance(record.args, tuple)
        and record.args[1] == kind
    ]


def test_old_finished_executions_go_with_their_live_actions_and_output(
    runtime: EngineRuntime,
) -> None:
    with unit_of_work(runtime.sessions) as session:
        doomed = {
            execution(session, status=status, started=OLD, ended=OLD, outputs=(OLD, YOUNG))
            for status in FINISHED
        }
        never_ended = execution(session, status="abandoned", started=OLD, outputs=(OLD,))
        doomed.add(never_ended)
        audit = enforcement(session, trigger_instance_id=new_id(), execution_id=never_ended)
        unfinished = {
            execution(session, status=status, started=OLD, outputs=(OLD,)) for status in UNFINISHED
        }
        kept = unfinished | {
            execution(session, status="succeeded", started=YOUNG, ended=YOUNG),
            execution(session, status="failed", started=OLD, ended=YOUNG),
        }
    doomed_liveactions = liveaction_of(runtime, doomed)
    kept_liveactions = liveaction_of(runtime, kept)

    removed = collector(runtime, action_executions_ttl=TTL).collect_once(now=NOW)

    assert removed == {
        "executions": 6,
        "liveactions": 6,
        "execution_output": 11,
        "trigger_instances": 0,
        "workflow_executions": 0,
    }
    assert ids(runtime, ExecutionDB.id) == kept
    assert ids(runtime, LiveActionDB.id) == kept_liveactions
    assert not doomed_liveactions & ids(runtime, LiveActionDB.id)
    assert ids(runtime, ExecutionOutputDB.execution_id) == unfinished
    assert len(ids(runtime, ExecutionOutputDB.id)) == len(UNFINISHED)
    assert ids(runtime, RuleEnforcementDB.id) == {audit}


def test_execution_trees_go_whole_or_not_at_all(runtime: EngineRuntime) -> None:
    with unit_of_work(runtime.sessions) as session:
        done_parent = finished(session)
        done_tree = {done_parent, finished(session, parent=done_parent)}
        done_tree.add(finished(session, parent=done_parent))
        nested_top = finished(session)
        nested_middle = finished(session, parent=nested_top)
        done_tree |= {nested_top, nested_middle, finished(session, parent=nested_middle)}

        busy_parent = execution(session, status="failed", started=OLD, ended=OLD)
        busy_tree = {busy_parent, finished(session, parent=busy_parent)}
        busy_tree.add(execution(session, status="running", started=OLD, parent=busy_parent))
        young_parent = finished(session)
        busy_tree |= {young_parent, finished(session, parent=young_parent, at=YOUNG)}
        running_parent = execution(session, status="running", started=OLD)
        busy_tree |= {running_parent, finished(session, parent=running_parent)}

        gone_parent = finished(session)
        orphan = finished(session, parent=gone_parent)
    with unit_of_work(runtime.sessions) as session:
        session.execute(sa.delete(ExecutionDB).where(ExecutionDB.id == gone_parent))

    removed = collector(runtime, action_executions_ttl=TTL).collect_once(now=NOW)

    assert removed["executions"] == len(done_tree) + 1
    assert ids(runtime, ExecutionDB.id) == busy_tree
    assert orphan not in ids(runtime, ExecutionDB.id)
    with runtime.sessions() as session:
        listed = session.scalars(sa.select(ExecutionDB.children)).all()
    assert {child for children in listed for child in children} <= busy_tree


def test_output_ttl_removes_only_old_output_of_finished_executions(
    runtime: EngineRuntime,
) -> None:
    with unit_of_work(runtime.sessions) as session:
        done = execution(
            session, status="succeeded", started=OLD, ended=OLD, outputs=(OLD, OLD, YOUNG)
        )
        running = execution(session, status="running", started=OLD, outputs=(OLD, YOUNG))

    removed = collector(runtime, action_executions_output_ttl=TTL).collect_once(now=NOW)

    assert removed == {
        "executions": 0,
        "liveactions": 0,
        "execution_output": 2,
        "trigger_instances": 0,
        "workflow_executions": 0,
    }
    assert ids(runtime, ExecutionDB.id) == {done, running}
    with runtime.sessions() as session:
        left = session.execute(
            sa.select(ExecutionOutputDB.execution_id, ExecutionOutputDB.timestamp)
        ).all()
    assert sorted(left) == sorted([(done, YOUNG), (running, OLD), (running, YOUNG)])


def test_trigger_instances_go_once_processed_and_old(runtime: EngineRuntime) -> None:
    with unit_of_work(runtime.sessions) as session:
        for status in ("processed", "processing_failed"):
            instance = trigger_instance(session, status=status, occurred=OLD)
        audit = enforcement(session, trigger_instance_id=instance, execution_id=None)
        kept = {
            trigger_instance(session, status="pending", occurred=OLD),
            trigger_instance(session, status="processing", occurred=OLD),
            trigger_instance(session, status="processed", occurred=YOUNG),
        }

    removed = collector(runtime, trigger_instances_ttl=TTL).collect_once(now=NOW)

    assert removed["trigger_instances"] == 2
    assert ids(runtime, TriggerInstanceDB.id) == kept
    assert ids(runtime, RuleEnforcementDB.id) == {audit}


def test_without_a_ttl_everything_stays(runtime: EngineRuntime) -> None:
    with unit_of_work(runtime.sessions) as session:
        execution(session, status="succeeded", started=OLD, ended=OLD, outputs=(OLD,))
        trigger_instance(session, status="processed", occurred=OLD)

    removed = collector(runtime).collect_once(now=NOW + timedelta(days=3650))

    assert removed == dict.fromkeys(removed, 0)
    assert len(ids(runtime, ExecutionDB.id)) == 1
    assert len(ids(runtime, ExecutionOutputDB.id)) == 1
    assert len(ids(runtime, TriggerInstanceDB.id)) == 1


def test_batches_are_small_separate_transactions(
    runtime: EngineRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    with unit_of_work(runtime.sessions) as session:
        # Old trees that must stay (a step still runs) are stepped over, not read again.
        stuck = set()
        for number in range(4):
            parent = finished(session, at=OLD - timedelta(hours=1, minutes=number))
            stuck |= {parent, execution(session, status="running", started=OLD, parent=parent)}
        for number in range(10):
            finished(session, at=OLD + timedelta(minutes=number))
            trigger_instance(session, status="processed", occurred=OLD)
    commits: list[int] = []
    sa.event.listen(runtime.engine, "commit", lambda _connection: commits.append(1))
    caplog.set_level(logging.DEBUG, logger=PROCESS_LOGGER)

    removed = collector(
        runtime, batch_size=3, action_executions_ttl=TTL, trigger_instances_ttl=TTL
    ).collect_once(now=NOW)

    assert removed["executions"] == 10
    assert removed["trigger_instances"] == 10
    assert ids(runtime, ExecutionDB.id) == stuck
    assert batches(caplog, "executions") == [3, 3, 3, 3, 2]
    assert batches(caplog, "trigger instances") == [3, 3, 3, 1]
    assert len(commits) >= 9
    summary = [record for record in caplog.records if record.levelno == logging.INFO]
    assert summary and summary[-1].getMessage() == (
        "Garbage collection removed 10 executions, 10 live actions, 0 output chunks, "
        "10 trigger instances and 0 workflow executions"
    )


def test_intake_goes_on_while_a_collection_is_under_way(runtime: EngineRuntime) -> None:
    with unit_of_work(runtime.sessions) as session:
        old = {finished(session, at=OLD + timedelta(minutes=number)) for number in range(10)}
    gc = collector(
        runtime,
        batch_size=2,
        sleep_delay=0.5,
        collection_interval=3600,
        action_executions_ttl=TTL,
    )
    stop = threading.Event()
    thread = threading.Thread(target=gc.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(old & ids(runtime, ExecutionDB.id)) == len(old):
            assert time.monotonic() < deadline, "the collector never started"
            time.sleep(0.02)
        began = time.monotonic()
        with unit_of_work(runtime.sessions) as session:
            fresh = request_execution(session, action_ref="core.noop", user="tester")
        took = time.monotonic() - began
        assert old & ids(runtime, ExecutionDB.id), "the collection had already finished"
        assert took < 5
        while old & ids(runtime, ExecutionDB.id):
            assert time.monotonic() < deadline, "the collection never finished"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert ids(runtime, ExecutionDB.id) == {fresh.execution_id}


def test_two_collectors_at_once_remove_each_row_once(runtime: EngineRuntime) -> None:
    with unit_of_work(runtime.sessions) as session:
        for number in range(20):
            parent = finished(session, at=OLD + timedelta(seconds=number))
            finished(session, parent=parent, at=OLD + timedelta(seconds=number))
    results: list[dict[str, int]] = []

    def collect() -> None:
        gc = collector(runtime, batch_size=2, action_executions_ttl=TTL)
        results.append(gc.collect_once(now=NOW))

    threads = [threading.Thread(target=collect) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 2
    assert sum(result["executions"] for result in results) == 40
    assert sum(result["liveactions"] for result in results) == 40
    assert ids(runtime, ExecutionDB.id) == set()


def test_a_database_error_is_logged_and_the_rest_still_collected(
    runtime: EngineRuntime, scratch_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    with unit_of_work(runtime.sessions) as session:
        finished(session)
    admin_sql("DROP TABLE trigger_instance_db", database=scratch_database)
    gc = collector(runtime, action_executions_ttl=TTL, trigger_instances_ttl=TTL)

    removed = gc.collect_once(now=NOW)

    assert removed["executions"] == 1
    assert any(
        record.levelno == logging.ERROR and "trigger instances" in record.getMessage()
        for record in caplog.records
    )
