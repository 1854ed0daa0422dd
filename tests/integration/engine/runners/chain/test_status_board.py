"""The action runner's status board: every waiting workflow's children read in one query."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from poundcake.db.session import unit_of_work
from poundcake.engine.actionrunner.statusboard import StatusBoard
from poundcake.engine.executions.models import ExecutionDB
from tests.integration.support.engine_stack import EngineStack, noop_engine


@pytest.fixture
def stack(tmp_path: Path, scratch_database: str) -> Iterator[EngineStack]:
    with noop_engine(tmp_path, scratch_database) as running:
        yield running


def set_status(stack: EngineStack, execution_id: str, status: str) -> None:
    with unit_of_work(stack.runtime.sessions) as session:
        session.execute(
            sa.update(ExecutionDB).where(ExecutionDB.id == execution_id).values(status=status)
        )


def test_one_query_per_reading_however_many_workflows_wait(stack: EngineStack) -> None:
    ids = [stack.request("tests.noop").execution_id for _ in range(12)]
    board = StatusBoard(stack.runtime.sessions, 0.01)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name == "status-board":
            statements.append(statement)

    sa.event.listen(stack.runtime.engine, "before_cursor_execute", count)
    try:
        with ExitStack() as watching:
            watches = [watching.enter_context(board.watching([each])) for each in ids]
            for execution_id, watch in zip(ids, watches, strict=True):
                assert watch.next()[execution_id].status == "requested"
            set_status(stack, ids[5], "succeeded")
            readings = [watches[5].next()[ids[5]].status for _ in range(200)]
            assert "succeeded" in readings
            assert watches[4].next()[ids[4]].status == "requested"
    finally:
        board.close()
        sa.event.remove(stack.runtime.engine, "before_cursor_execute", count)
    assert statements, "the board read nothing"
    assert len(statements) == board.generation
    assert all("execution_db" in statement for statement in statements)


def test_a_watch_added_while_a_reading_is_under_way_waits_for_one_that_includes_it(
    stack: EngineStack,
) -> None:
    first, second = (stack.request("tests.noop").execution_id for _ in range(2))

    class HeldBoard(StatusBoard):
        reading = threading.Event()
        go_on = threading.Event()

        def _read(self, ids: list[str]) -> Any:
            if not self.reading.is_set():
                self.reading.set()
                assert self.go_on.wait(10)
            return super()._read(ids)

    board = HeldBoard(stack.runtime.sessions, 0.01)
    try:
        with board.watching([first]) as early:
            assert board.reading.wait(10)
            with board.watching([second]) as late:
                board.go_on.set()
                assert early.next()[first].status == "requested"
                assert late.next()[second].status == "requested"
    finally:
        board.close()


def test_a_failed_reading_is_raised_to_the_waiters(stack: EngineStack) -> None:
    execution_id = stack.request("tests.noop").execution_id

    class BrokenBoard(StatusBoard):
        def _read(self, ids: list[str]) -> Any:
            raise sa.exc.OperationalError("SELECT", {}, Exception("server has gone away"))

    board = BrokenBoard(stack.runtime.sessions, 0.01)
    try:
        with board.watching([execution_id]) as watch, pytest.raises(sa.exc.OperationalError):
            watch.next()
    finally:
        board.close()


def test_a_gone_execution_is_missing_from_the_reading(stack: EngineStack) -> None:
    board = StatusBoard(stack.runtime.sessions, 0.01)
    try:
        with board.watching(["0" * 24]) as watch:
            assert watch.next() == {}
    finally:
        board.close()


def test_after_close_a_waiter_reads_alone(stack: EngineStack) -> None:
    execution_id = stack.request("tests.noop").execution_id
    board = StatusBoard(stack.runtime.sessions, 0.01)
    with board.watching([execution_id]) as watch:
        assert watch.next()[execution_id].status == "requested"
        board.close()
        set_status(stack, execution_id, "succeeded")
        assert watch.next()[execution_id].status == "succeeded"
