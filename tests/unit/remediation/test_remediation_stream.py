"""Reading the engine's event stream: server-sent events and which alert an execution serves."""

from __future__ import annotations

from poundcake.remediation.engine_stream import server_sent_events
from poundcake.remediation.tracking.stream import alert_of


def test_server_sent_events_are_split_into_event_and_data() -> None:
    lines = [
        "event: st2.execution__update",
        'data: {"id": "1",',
        'data:  "context": {}}',
        "",
        ": a heartbeat comment",
        "",
        "event: st2.execution__update",
        'data: {"id": "2"}',
    ]
    assert list(server_sent_events(iter(lines))) == [
        ("st2.execution__update", '{"id": "1",\n"context": {}}'),
        ("st2.execution__update", '{"id": "2"}'),
    ]


def test_the_alert_of_a_finished_execution_comes_from_its_context() -> None:
    done = {"status": "succeeded"}
    assert alert_of({**done, "context": {"alert_id": "a" * 24}}) == "a" * 24
    assert alert_of({**done, "context": {"parent": {"alert_id": "b" * 24}}}) == "b" * 24
    assert alert_of({"status": "canceled", "context": {"alert_id": "c" * 24}}) == "c" * 24
    assert alert_of({"status": "running", "context": {"alert_id": "a" * 24}}) is None
    assert alert_of({**done, "context": {"user": "stanley"}}) is None
    assert alert_of({**done, "context": "not a mapping"}) is None
    assert alert_of(["not", "a", "document"]) is None
