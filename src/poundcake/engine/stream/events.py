"""Stream events: their names, which ones a client asked for, and their frames on the wire.

A client names events with glob patterns (``st2.execution__*``) and may narrow them to action
refs and execution ids, as StackStorm's stream does; it may also name an end event that closes
the stream once a given execution reached a completed status.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any

from poundcake.engine.executions.states import is_completed

EXECUTION_CREATE = "st2.execution__create"
EXECUTION_UPDATE = "st2.execution__update"
EXECUTION_DELETE = "st2.execution__delete"
OUTPUT_CREATE = "st2.execution.output__create"
EXECUTION_PREFIX = "st2.execution__"
LIVEACTION_PREFIX = "st2.liveaction__"
OUTPUT_PREFIX = "st2.execution.output__"

DEFAULT_EVENTS: tuple[str, ...] = (
    "st2.announcement__*",
    EXECUTION_CREATE,
    EXECUTION_UPDATE,
    EXECUTION_DELETE,
    "st2.liveaction__create",
    "st2.liveaction__update",
    "st2.liveaction__delete",
)

HEARTBEAT = b"\n"


@dataclass(frozen=True)
class Event:
    """One event as clients receive it: its name and its JSON body."""

    name: str
    body: Any

    def _field(self, name: str) -> Any:
        return self.body.get(name) if isinstance(self.body, Mapping) else None

    @property
    def action_ref(self) -> str | None:
        """The action the event is about (none for announcements)."""
        if self.name.startswith(EXECUTION_PREFIX):
            action = self._field("action")
            return action.get("ref") if isinstance(action, Mapping) else None
        if self.name.startswith(LIVEACTION_PREFIX):
            ref = self._field("action")
            return ref if isinstance(ref, str) else None
        if self.name.startswith(OUTPUT_PREFIX):
            ref = self._field("action_ref")
            return ref if isinstance(ref, str) else None
        return None

    @property
    def execution_id(self) -> str | None:
        """The execution the event is about (none for live actions and announcements)."""
        if self.name.startswith(EXECUTION_PREFIX):
            found = self._field("id")
        elif self.name.startswith(OUTPUT_PREFIX):
            found = self._field("execution_id")
        else:
            return None
        return found if isinstance(found, str) else None

    @cached_property
    def frame(self) -> bytes:
        """The server-sent event frame: ``event: <name>\\ndata: <json>\\n\\n`` (encoded once,
        however many clients receive it)."""
        data = json.dumps(self.body, separators=(",", ":"), ensure_ascii=False)
        return f"event: {self.name}\ndata: {data}\n\n".encode()


def split_list(value: str | None) -> tuple[str, ...]:
    """A comma-separated query value as its non-empty items."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


@dataclass(frozen=True)
class EventFilter:
    """The events a client asked for: name patterns, then action refs and execution ids."""

    patterns: tuple[str, ...] = DEFAULT_EVENTS
    action_refs: frozenset[str] = frozenset()
    execution_ids: frozenset[str] = frozenset()

    @classmethod
    def from_query(
        cls,
        events: Iterable[str] = (),
        action_refs: Iterable[str] = (),
        execution_ids: Iterable[str] = (),
    ) -> EventFilter:
        """Build a filter; no event patterns means StackStorm's default set."""
        patterns = tuple(events)
        return cls(patterns or DEFAULT_EVENTS, frozenset(action_refs), frozenset(execution_ids))

    def wants_name(self, name: str) -> bool:
        """Tell whether an event of this name can pass the filter."""
        return any(fnmatchcase(name, pattern) for pattern in self.patterns)

    def matches(self, event: Event) -> bool:
        """Tell whether the client receives ``event``."""
        if not self.wants_name(event.name):
            return False
        if self.action_refs and event.action_ref not in self.action_refs:
            return False
        return not (self.execution_ids and event.execution_id not in self.execution_ids)


@dataclass(frozen=True)
class EndCondition:
    """Close the stream after ``event`` for execution ``execution_id`` in a completed status."""

    event: str | None = None
    execution_id: str | None = None

    @property
    def is_set(self) -> bool:
        """Tell whether the client asked for an end at all."""
        return bool(self.event and self.execution_id)

    def reached_by(self, event: Event) -> bool:
        """Tell whether ``event`` ends the stream."""
        if not self.is_set or event.name != self.event:
            return False
        body = event.body
        return (
            isinstance(body, Mapping)
            and body.get("id") == self.execution_id
            and is_completed(str(body.get("status")))
        )


@dataclass(frozen=True)
class StreamQuery:
    """Everything one client asked for."""

    filter: EventFilter = EventFilter()
    end: EndCondition = EndCondition()

    def wants_name(self, name: str) -> bool:
        """Tell whether events of this name are worth preparing for this client."""
        return self.filter.wants_name(name) or (self.end.is_set and name == self.end.event)

    def accepts(self, event: Event) -> bool:
        """Tell whether ``event`` goes to this client's queue (shown, or ending the stream)."""
        return self.filter.matches(event) or self.end.reached_by(event)


def is_document(body: Any) -> bool:
    """Tell whether an execution or live action event already carries its document."""
    return isinstance(body, Mapping) and "id" in body and "status" in body
