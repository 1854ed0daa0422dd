"""The persistent state of a workflow, as the conductor keeps it.

:class:`WorkflowState` is the JSON document stored with a workflow execution (see
:mod:`poundcake.engine.workflows.conductor` for what each part means). A with-items task's
staged entry keeps its items as counts: ``count`` items, ``next`` the first never started,
``redo`` those set to run again, and ``statuses`` how many items are in each status, so an
item's event costs the same whatever the number of items.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from poundcake.engine.workflows import machines as m


@dataclass
class WorkflowState:
    """The persistent state of one workflow (see the module docstring)."""

    status: str = m.UNSET
    routes: list[list[str]] = field(default_factory=list)
    staged: list[dict[str, Any]] = field(default_factory=list)
    sequence: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, int] = field(default_factory=dict)
    reruns: list[list[int]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    output: dict[str, Any] | None = None

    def to_document(self) -> dict[str, Any]:
        """The state as JSON-able data (errors and output are stored apart)."""
        document: dict[str, Any] = {
            "status": self.status,
            "routes": self.routes,
            "staged": self.staged,
            "sequence": self.sequence,
            "tasks": self.tasks,
        }
        if self.reruns:
            document["reruns"] = self.reruns
        return copy.deepcopy(document)

    @classmethod
    def from_document(
        cls,
        document: Mapping[str, Any],
        *,
        errors: list[dict[str, Any]] | None = None,
        output: dict[str, Any] | None = None,
    ) -> WorkflowState:
        """A state from :meth:`to_document`'s data."""
        data = copy.deepcopy(dict(document))
        return cls(
            status=data.get("status", m.UNSET),
            routes=data.get("routes", []),
            staged=data.get("staged", []),
            sequence=data.get("sequence", []),
            tasks=data.get("tasks", {}),
            reruns=data.get("reruns", []),
            errors=copy.deepcopy(errors or []),
            output=copy.deepcopy(output),
        )


def entry_key(task_id: str, route: int) -> str:
    """Orquesta's key of a task occurrence on a route: ``<task>__r<route>``."""
    return f"{task_id}__r{route}"


def merge(left: Mapping[str, Any], right: Mapping[str, Any]) -> dict[str, Any]:
    """``right`` over ``left``; mappings on both sides are merged key by key. Neither side is
    changed."""
    merged = dict(left)
    for key, value in right.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge(current, value)
        else:
            merged[key] = value
    return merged


def count_statuses(counts: Mapping[str, int], statuses: set[str] | frozenset[str]) -> int:
    """How many items are in one of ``statuses``."""
    return sum(n for status, n in counts.items() if status in statuses)


def items_active(staged: Mapping[str, Any]) -> bool:
    """Whether a staged with-items task has items in flight."""
    items = staged.get("items")
    return isinstance(items, Mapping) and count_statuses(items["statuses"], m.ACTIVE) > 0


def move_item(items: dict[str, Any], item_id: int, previous: str | None, status: str) -> None:
    """Count an item's new status (and, for an item starting, take it off the waiting list)."""
    previous = previous or m.UNSET
    counts = items["statuses"]
    if previous == m.UNSET:
        if item_id in items["redo"]:
            items["redo"].remove(item_id)
        elif item_id >= items["next"]:
            items["next"] = item_id + 1
    counts[previous] = counts.get(previous, 0) - 1
    if counts[previous] <= 0:
        counts.pop(previous)
    counts[status] = counts.get(status, 0) + 1


def items_to_run_again(items: dict[str, Any], everything: bool) -> None:
    """Count the items set to run again as not run: every item, or the failed ones."""
    counts = items["statuses"]
    again = sum(n for status, n in counts.items() if everything or status in m.ABENDED)
    for status in list(counts):
        if everything or status in m.ABENDED:
            counts.pop(status)
    if again:
        counts[m.UNSET] = again


def item_window(items: Mapping[str, Any]) -> list[int]:
    """The items to start now: not yet run, in item order, up to the concurrency."""
    count = int(items["count"])
    first = int(items["next"])
    redo = sorted(items["redo"])
    concurrency = items.get("concurrency")
    if concurrency is None:
        return redo + list(range(first, count))
    limit = max(max(int(concurrency), 1) - count_statuses(items["statuses"], m.ACTIVE), 0)
    again = redo[:limit]
    return again + list(range(first, min(count, first + limit - len(again))))
