"""What passes between the conductor and the service that runs it: the tasks to run, the
events that come back, and what the conductor asks of its surroundings."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from poundcake.engine.workflows import machines as m
from poundcake.engine.workflows.expressions import KeyValueReader


class ConductorError(Exception):
    """A request the workflow cannot take in its state; the message says why."""


class WorkflowRuntime(Protocol):
    """What the conductor needs from the world around it (the service implements it)."""

    datastore: KeyValueReader | None

    def context(self, index: int) -> Mapping[str, Any]:
        """A context entry."""

    def add_context(self, values: Mapping[str, Any]) -> int:
        """Keep a new context entry; return its index."""

    def task_record(self, task_id: str, route: int) -> Mapping[str, Any] | None:
        """StackStorm's ``task()`` document of the newest execution of a task, or None."""

    def item_specs(self, task_id: str, route: int, item_ids: Sequence[int]) -> list[ActionSpec]:
        """Rendered actions of a with-items task's items, by id, as :class:`TaskRequest.items`
        gave them when the task started."""


@dataclass(frozen=True)
class ActionSpec:
    """One action to request: the item it is for (with items), the action ref and its input."""

    item_id: int | None
    action: str | None
    input: Any


@dataclass
class TaskRequest:
    """A task to run now: its actions (for a with-items task, the items to start now), its
    delay in seconds, and, the first time a with-items task is asked for, all its items."""

    task_id: str
    route: int
    actions: list[ActionSpec]
    contexts: list[int]
    delay: int | None = None
    items_count: int | None = None
    concurrency: int | None = None
    items: list[ActionSpec] | None = None

    @property
    def itemized(self) -> bool:
        """Whether the task runs its action once per item."""
        return self.items_count is not None


@dataclass(frozen=True)
class CommandEvent:
    """An engine command run as a task (``continue``, ``fail``, ``noop``) or a retry."""

    name: str
    status: str
    item_id: None = None
    result: None = None


ENGINE_EVENTS = {
    "continue": CommandEvent("task_continue_requested", m.SUCCEEDED),
    "fail": CommandEvent("task_fail_requested", m.FAILED),
    "noop": CommandEvent("task_noop_requested", m.SUCCEEDED),
}
RETRY_EVENT = CommandEvent("task_retry_requested", m.RETRYING)


@dataclass(frozen=True)
class ActionEvent:
    """An action execution of a task changed status (``item_id`` for a with-items item).
    ``accumulated`` returns every item's result in item order; it is asked for only when a
    with-items task completes."""

    status: str
    result: Any = None
    item_id: int | None = None
    previous: str | None = None
    accumulated: Callable[[], list[Any]] | None = None
