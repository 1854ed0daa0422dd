"""The stream's reader: a batch of id-only messages becomes documents read in one query."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from poundcake.engine.stream.service import StreamReader
from tests.integration.support.engine_stack import EngineStack, noop_engine

UPDATE = "st2.execution__update"
LIVEACTION_UPDATE = "st2.liveaction__update"


@pytest.fixture
def stack(tmp_path: Path, scratch_database: str) -> Iterator[EngineStack]:
    with noop_engine(tmp_path, scratch_database) as running:
        yield running


def test_a_batch_of_messages_is_read_in_one_query_per_table_and_answered_in_order(
    stack: EngineStack,
) -> None:
    requested = [stack.request("tests.noop") for _ in range(6)]
    messages: list[tuple[str, Any]] = [
        (UPDATE, {"execution_id": each.execution_id, "liveaction_id": each.liveaction_id})
        for each in requested[:4]
    ]
    messages.append((UPDATE, {"liveaction_id": requested[4].liveaction_id}))
    messages.append((LIVEACTION_UPDATE, {"liveaction_id": requested[5].liveaction_id}))
    messages.append(("st2.announcement__chatops", {"message": "hi"}))
    messages.append((UPDATE, {"execution_id": "0" * 24}))
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    reader = StreamReader(stack.runtime.sessions)
    sa.event.listen(stack.runtime.engine, "before_cursor_execute", count)
    try:
        answered = reader.resolve_many(messages, lambda name: name != LIVEACTION_UPDATE)
        nothing_wanted = reader.resolve_many(messages, lambda name: False)
    finally:
        sa.event.remove(stack.runtime.engine, "before_cursor_execute", count)

    assert [[event.name for event in events] for events in answered] == [
        [UPDATE],
        [UPDATE],
        [UPDATE],
        [UPDATE],
        [UPDATE],
        [],  # live action events are not wanted
        ["st2.announcement__chatops"],
        [],  # no such execution
    ]
    ids = [events[0].body["id"] for events in answered[:5]]
    assert ids == [each.execution_id for each in requested[:5]]
    assert all(events[0].body["status"] == "requested" for events in answered[:5])
    assert nothing_wanted == [[] for _ in messages]
    # Only the executions were wanted: one query for all of them, none when nothing is wanted.
    assert len(statements) == 1
    assert "execution_db" in statements[0]


def test_live_action_events_come_with_their_execution_read_in_the_same_batch(
    stack: EngineStack,
) -> None:
    first, second = stack.request("tests.noop"), stack.request("tests.noop")
    messages: list[tuple[str, Any]] = [
        (UPDATE, {"execution_id": first.execution_id}),
        (LIVEACTION_UPDATE, {"liveaction_id": second.liveaction_id}),
    ]
    answered = StreamReader(stack.runtime.sessions).resolve_many(messages, lambda name: True)
    assert [[event.name for event in events] for events in answered] == [
        [LIVEACTION_UPDATE, UPDATE],
        [LIVEACTION_UPDATE],
    ]
    assert answered[0][0].body["id"] == first.liveaction_id
    assert answered[0][1].body["id"] == first.execution_id
    assert answered[1][0].body["id"] == second.liveaction_id
