"""Stream event filtering (glob patterns, action refs, execution ids), end conditions, frames."""

from __future__ import annotations

import json

import pytest

from poundcake.engine.stream.events import (
    DEFAULT_EVENTS,
    HEARTBEAT,
    EndCondition,
    Event,
    EventFilter,
    StreamQuery,
    split_list,
)


def execution(execution_id: str = "e1", ref: str = "core.local", status: str = "running") -> Event:
    return Event(
        "st2.execution__update", {"id": execution_id, "status": status, "action": {"ref": ref}}
    )


def output(execution_id: str = "e1", ref: str = "core.local") -> Event:
    body = {"id": "o1", "execution_id": execution_id, "action_ref": ref, "data": "x\n"}
    return Event("st2.execution.output__create", body)


def liveaction(ref: str = "core.local") -> Event:
    return Event("st2.liveaction__update", {"id": "l1", "status": "running", "action": ref})


def test_split_list_drops_blanks_and_spaces() -> None:
    assert split_list(None) == ()
    assert split_list("") == ()
    assert split_list(" a, b,,c ") == ("a", "b", "c")


def test_default_set_is_stackstorms() -> None:
    default = EventFilter.from_query()
    assert default.patterns == DEFAULT_EVENTS
    assert default.wants_name("st2.announcement__chatops")
    assert default.wants_name("st2.execution__create")
    assert default.wants_name("st2.liveaction__delete")
    assert not default.wants_name("st2.execution.output__create")
    assert not default.wants_name("st2.actionalias__create")


@pytest.mark.parametrize(
    ("pattern", "name", "wanted"),
    [
        ("st2.execution__*", "st2.execution__update", True),
        ("st2.execution__*", "st2.execution.output__create", False),
        ("st2.execution*", "st2.execution.output__create", True),
        ("*__create", "st2.liveaction__create", True),
        ("st2.execution__update", "st2.execution__updated", False),
        ("st2.execution__?pdate", "st2.execution__update", True),
        ("ST2.EXECUTION__UPDATE", "st2.execution__update", False),
        ("*", "st2.announcement__general", True),
    ],
)
def test_event_names_match_glob_patterns(pattern: str, name: str, wanted: bool) -> None:
    assert EventFilter.from_query([pattern]).wants_name(name) is wanted


def test_several_patterns_are_alternatives() -> None:
    chosen = EventFilter.from_query(split_list("st2.execution__update,st2.execution.output__*"))
    assert chosen.matches(execution())
    assert chosen.matches(output())
    assert not chosen.matches(liveaction())


def test_action_refs_narrow_each_kind_of_event() -> None:
    only_echo = EventFilter.from_query(["*"], action_refs=["core.echo"])
    assert only_echo.matches(execution(ref="core.echo"))
    assert not only_echo.matches(execution(ref="core.local"))
    assert only_echo.matches(output(ref="core.echo"))
    assert not only_echo.matches(output(ref="core.local"))
    assert only_echo.matches(liveaction(ref="core.echo"))
    assert not only_echo.matches(Event("st2.announcement__general", {"message": "hi"}))


def test_execution_ids_narrow_executions_and_output_but_exclude_liveactions() -> None:
    only_e2 = EventFilter.from_query(["*"], execution_ids=["e2"])
    assert only_e2.matches(execution("e2"))
    assert not only_e2.matches(execution("e1"))
    assert only_e2.matches(output("e2"))
    assert not only_e2.matches(output("e1"))
    assert not only_e2.matches(liveaction())


def test_end_condition_needs_the_event_the_execution_and_a_completed_status() -> None:
    end = EndCondition("st2.execution__update", "e1")
    assert end.reached_by(execution("e1", status="succeeded"))
    assert end.reached_by(execution("e1", status="abandoned"))
    assert not end.reached_by(execution("e1", status="running"))
    assert not end.reached_by(execution("e1", status="canceling"))
    assert not end.reached_by(execution("e2", status="failed"))
    created = Event("st2.execution__create", {"id": "e1", "status": "succeeded"})
    assert not end.reached_by(created)
    assert not EndCondition(None, "e1").reached_by(execution("e1", status="succeeded"))
    assert not EndCondition("st2.execution__update", None).reached_by(
        execution("e1", status="succeeded")
    )


def test_query_accepts_the_end_event_even_when_the_filter_hides_it() -> None:
    query = StreamQuery(
        EventFilter.from_query(["st2.execution.output__create"]),
        EndCondition("st2.execution__update", "e1"),
    )
    assert query.wants_name("st2.execution__update")
    assert query.accepts(execution("e1", status="succeeded"))
    assert not query.accepts(execution("e1", status="running"))
    assert not query.filter.matches(execution("e1", status="succeeded"))


def test_frame_is_event_line_data_line_blank_line() -> None:
    frame = execution().frame
    assert frame.startswith(b"event: st2.execution__update\ndata: ")
    assert frame.endswith(b"\n\n")
    assert frame.count(b"\n") == 3
    data = frame.decode().split("\n")[1].removeprefix("data: ")
    assert json.loads(data) == execution().body


def test_frame_keeps_newlines_of_output_inside_the_json_and_encodes_utf8() -> None:
    event = Event("st2.execution.output__create", {"data": "line1\r\nline2 \u2713\n"})
    frame = event.frame
    assert frame.count(b"\n") == 3
    assert "\u2713".encode() in frame
    assert json.loads(frame.decode().split("\n")[1][len("data: ") :]) == event.body


def test_heartbeat_is_a_bare_newline() -> None:
    assert HEARTBEAT == b"\n"
