"""The conductor: one workflow's progress, decided from events, kept in a small JSON state.

The conductor knows nothing of databases or brokers. It is built from a definition, its graph
and the stored :class:`WorkflowState`, told what happened (a task's action changed status, the
workflow was asked to pause, resume, cancel or fail), and answers what to run next. The service
(:mod:`poundcake.engine.workflows.service`) persists the state and does the running.

The state follows Orquesta's model, so workflows end as they end on StackStorm:

* ``staged``: tasks waiting to run (or, with items, running) on a route, with the indexes of
  the context entries they start from, the transitions that brought them, and whether they are
  ready (a join is ready once enough inbound transitions are satisfied);
* ``sequence``: every task occurrence so far, with its status, the transitions it satisfied
  (``next``), whether it is terminal, and its retry tally; ``tasks`` points each task and route
  at its newest occurrence;
* ``routes``: the branches a task that many transitions lead to runs on, one per arrival;
* context entries, append-only: the first holds the runtime context, input and vars, every
  later one what one transition published. Entries are kept by the service, not in the state, so
  a large context costs nothing per transition.

With-items tasks keep per-status counts of their items in the staged entry instead of one entry
per item, and items are rendered once, when the task starts: an event costs the same whatever
the number of items.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from poundcake.engine.workflows import machines as m
from poundcake.engine.workflows.definition import ENGINE_COMMANDS, WorkflowDefinition
from poundcake.engine.workflows.expressions import (
    NO_ITEM,
    CurrentTask,
    ExpressionError,
    KeyValueReader,
    Scope,
    evaluate,
)
from poundcake.engine.workflows.graph import Edge, WorkflowGraph

SATISFIED = "satisfied"
IN_PROGRESS = "in_progress"
NOT_SATISFIED = "not_satisfied"


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


class Conductor:
    """Conducts one workflow; see the module docstring."""

    def __init__(
        self,
        definition: WorkflowDefinition,
        graph: WorkflowGraph,
        state: WorkflowState,
        runtime: WorkflowRuntime,
    ) -> None:
        self.definition = definition
        self.graph = graph
        self.state = state
        self.runtime = runtime
        self._merged: dict[tuple[int, ...], dict[str, Any]] = {}

    # --- starting ----------------------------------------------------------------------------

    def start(self, inputs: Mapping[str, Any], parent_context: Mapping[str, Any]) -> None:
        """Render input and vars into the first context entry and stage the start tasks; on a
        rendering error the workflow fails with it."""
        rolling = dict(parent_context)
        errors: list[ExpressionError] = []
        for name, default, _ in self.definition.input:
            value = inputs.get(name, default)
            try:
                rolling[name] = evaluate(value, self._scope(rolling))
            except ExpressionError as error:
                errors.append(error)
        for name, value in self.definition.vars:
            try:
                rolling[name] = evaluate(value, self._scope(rolling))
            except ExpressionError as error:
                errors.append(error)
        if errors:
            for problem in errors:
                self.log_error(problem)
            self.request_status(m.FAILED)
            return
        self.runtime.add_context(rolling)
        self.state.routes.append([])
        for name in self.graph.roots:
            self._stage(name, 0, contexts=[0], ready=True)

    # --- logging -----------------------------------------------------------------------------

    def log_error(
        self,
        error: BaseException | str,
        *,
        task_id: str | None = None,
        route: int | None = None,
        transition: str | None = None,
        result: Any = None,
        message: str | None = None,
    ) -> None:
        """Record an error in the workflow's ``errors`` (once)."""
        if message is None:
            kind = getattr(error, "kind", None) or type(error).__name__
            message = f"{kind}: {error}"
        entry: dict[str, Any] = {"type": "error", "message": message}
        for key, value in (
            ("task_id", task_id),
            ("route", route),
            ("task_transition_id", transition),
            ("result", result),
        ):
            if value is not None:
                entry[key] = value
        if entry not in self.state.errors:
            self.state.errors.append(entry)

    # --- reading the state -------------------------------------------------------------------

    def entry(self, task_id: str, route: int) -> dict[str, Any] | None:
        """The newest occurrence of a task on a route."""
        index = self.state.tasks.get(entry_key(task_id, route))
        return None if index is None else self.state.sequence[index]

    def _current_entries(self) -> list[dict[str, Any]]:
        return [self.state.sequence[index] for index in sorted(set(self.state.tasks.values()))]

    def _has_status(self, statuses: frozenset[str] | set[str]) -> bool:
        return any(entry.get("status") in statuses for entry in self._current_entries())

    @property
    def has_active_tasks(self) -> bool:
        """Whether a task is requested, running, pausing or canceling."""
        return self._has_status(m.ACTIVE)

    def _ready_staged(self) -> list[dict[str, Any]]:
        return [s for s in self.state.staged if s["ready"] and not s.get("completed")]

    @property
    def has_staged_tasks(self) -> bool:
        """Whether a task is ready to run."""
        return bool(self._ready_staged())

    def staged(self, task_id: str, route: int) -> dict[str, Any] | None:
        """The staged entry of a task on a route."""
        for staged in self.state.staged:
            if staged["id"] == task_id and staged["route"] == route:
                return staged
        return None

    def _stage(
        self,
        task_id: str,
        route: int,
        *,
        contexts: list[int],
        prev: dict[str, int] | None = None,
        ready: bool = True,
        retry: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        staged: dict[str, Any] = {
            "id": task_id,
            "ctxs": {"in": list(contexts or [0])},
            "route": route,
            "prev": dict(prev or {}),
            "ready": ready,
        }
        if retry:
            staged["retry"] = retry
        self.state.staged.append(staged)
        return staged

    def _unstage(self, task_id: str, route: int) -> None:
        staged = self.staged(task_id, route)
        if staged is not None and not _items_active(staged):
            self.state.staged.remove(staged)

    # --- contexts ----------------------------------------------------------------------------

    def context(self, indexes: Sequence[int]) -> dict[str, Any]:
        """The context made of the given entries, later entries over earlier ones."""
        key = tuple(indexes)
        merged = self._merged.get(key)
        if merged is None:
            merged = {}
            for index in key:
                merged = merge(merged, self.runtime.context(index))
            self._merged[key] = merged
        return merged

    def _scope(
        self,
        variables: Mapping[str, Any],
        task: CurrentTask | None = None,
        item: Any = NO_ITEM,
    ) -> Scope:
        return Scope(
            variables=variables,
            current_task=task,
            current_item=item,
            workflow=self,
            datastore=self.runtime.datastore,
        )

    def task_context(self, task_id: str, route: int) -> dict[str, Any]:
        """The context a task starts from (staged, else its newest occurrence, else the
        workflow's initial context)."""
        staged = self.staged(task_id, route)
        if staged is not None:
            return self.context(staged["ctxs"]["in"])
        entry = self.entry(task_id, route)
        if entry is not None:
            return self.context(entry["ctxs"]["in"])
        return self.context([0])

    # --- WorkflowView (for task functions) ---------------------------------------------------

    def task_status(self, task_id: str, route: int) -> str:
        """A task's status on a route, looking at earlier routes the route grew from."""
        index = self._entry_index(task_id, route)
        if index is None:
            return m.UNSET
        return str(self.state.sequence[index].get("status", m.UNSET))

    def _entry_index(self, task_id: str, route: int) -> int | None:
        index = self.state.tasks.get(entry_key(task_id, route))
        if index is not None:
            return index
        if route <= 0 or route >= len(self.state.routes):
            return None
        current = set(self.state.routes[route])
        for earlier in range(route - 1, -1, -1):
            if not set(self.state.routes[earlier]) - current:
                return self._entry_index(task_id, earlier)
        return None

    def task(self, task_id: str, route: int) -> Mapping[str, Any]:
        """StackStorm's ``task()`` document for a task on a route (or an earlier route)."""
        index = self._entry_index(task_id, route)
        record = None
        if index is not None:
            found = self.state.sequence[index]
            record = self.runtime.task_record(task_id, int(found["route"]))
        if record is None:
            raise ExpressionError(
                f'Unable to find task execution for "{task_id}".',
                kind="ExpressionEvaluationException",
            )
        return record

    # --- workflow status ---------------------------------------------------------------------

    def request_status(self, status: str) -> None:
        """Ask the workflow to move to ``status`` (paused, resuming, canceled, failed, running)."""
        current = self.state.status
        for staged_entry in list(self._current_entries()):
            if staged_entry.get("status") in m.ACTIVE:
                self._apply_workflow_event_to_task(staged_entry, status)
        event = f"workflow_{status}"
        if status in m.PAUSE_STATUSES | m.CANCEL_STATUSES:
            event += "_workflow_active" if self.has_active_tasks else "_workflow_dormant"
        if (
            self.state.status == m.PAUSED
            and status in (m.RUNNING, m.RESUMING)
            and not self.has_active_tasks
            and not self.has_staged_tasks
            and not self._has_status({m.PAUSED, m.PENDING})
        ):
            event += "_workflow_completed"
        moved = m.next_workflow_status(self.state.status, event)
        if moved is not None:
            self.state.status = moved
        updated = self.state.status
        if status == m.PAUSED and current == m.PAUSING and updated == m.PAUSING:
            return
        if status == m.CANCELED and current == m.CANCELING and updated == m.CANCELING:
            return
        if status != current and current == updated:
            raise ConductorError(
                f'Unable to process event "{event}" for workflow in "{current}" status.'
            )

    def _apply_workflow_event_to_task(self, entry: dict[str, Any], status: str) -> None:
        event = f"workflow_{status}"
        staged = self.staged(entry["id"], entry["route"])
        if status in m.PAUSE_STATUSES | m.CANCEL_STATUSES and staged and "items" in staged:
            counts = staged["items"]["statuses"]
            event += "_task_active" if _count(counts, m.ACTIVE) else "_task_dormant"
            incomplete = _count(counts, set(counts) - m.COMPLETED)
            event += "_items_incomplete" if incomplete else "_items_completed"
        entry["status"] = m.next_task_status(entry.get("status", m.UNSET), event)

    # --- what to run next --------------------------------------------------------------------

    def next_tasks(self) -> list[TaskRequest]:
        """The staged tasks ready to run, rendered; a rendering error fails the workflow."""
        staged = self._ready_staged()
        remediation = []
        if self.state.status == m.FAILED:
            remediation = [s for s in staged if s.get("run_on_fail")]
        if self.state.status not in m.RUNNING_STATUSES and not remediation:
            return []
        requests = []
        failed = False
        for entry in remediation or staged:
            try:
                request = self._render_task(entry)
            except (ExpressionError, TypeError, ValueError) as error:
                failed = True
                self.log_error(error, task_id=entry["id"], route=entry["route"])
                continue
            if request.actions or request.items_count == 0:
                requests.append(request)
        if failed:
            self.request_status(m.FAILED)
            return []
        return sorted(requests, key=lambda r: (r.task_id, r.route))

    def _render_task(self, staged: dict[str, Any]) -> TaskRequest:
        task_id, route = staged["id"], staged["route"]
        task = self.definition.task(task_id)
        variables = self.context(staged["ctxs"]["in"])
        scope = self._scope(variables, CurrentTask(task_id, route))
        request = TaskRequest(task_id, route, [], list(staged["ctxs"]["in"]))
        if task.items is None:
            request.actions = [
                ActionSpec(None, evaluate(task.action, scope), evaluate(task.input or {}, scope))
            ]
        else:
            self._render_items(staged, scope, request)
        if task.delay:
            delay = evaluate(task.delay, scope) if isinstance(task.delay, str) else task.delay
            if not isinstance(delay, int) or isinstance(delay, bool):
                raise TypeError("The value of task delay is not type of integer.")
            request.delay = delay
        if "retry" in staged:
            request.delay = staged["retry"].get("delay") or 0
        return request

    def _render_items(self, staged: dict[str, Any], scope: Scope, request: TaskRequest) -> None:
        task = self.definition.task(request.task_id)
        assert task.items is not None
        items = staged.get("items")
        if not items:
            rendered = self._render_all_items(task.items.expression, task.items.keys, scope, task)
            items = {
                "count": len(rendered),
                "next": 0,
                "redo": [],
                "statuses": {m.UNSET: len(rendered)} if rendered else {},
            }
            concurrency = task.items.concurrency
            items["concurrency"] = evaluate(concurrency, scope) if concurrency is not None else None
            staged["items"] = items
            request.items = rendered
        request.items_count = items["count"]
        request.concurrency = items["concurrency"]
        window = self._item_window(items)
        if not window:
            return
        if request.items is not None:
            request.actions = [request.items[item_id] for item_id in window]
        else:
            request.actions = self.runtime.item_specs(request.task_id, request.route, window)

    @staticmethod
    def _item_window(items: dict[str, Any]) -> list[int]:
        """The items to start now: not yet run, in item order, up to the concurrency."""
        count = int(items["count"])
        waiting = sorted(items["redo"]) + list(range(int(items["next"]), count))
        concurrency = items.get("concurrency")
        if concurrency is None:
            return waiting
        limit = max(int(concurrency), 1) - _count(items["statuses"], m.ACTIVE)
        return waiting[: max(limit, 0)]

    def _render_all_items(
        self, expression: str, keys: tuple[str, ...] | None, scope: Scope, task: Any
    ) -> list[ActionSpec]:
        values = evaluate(expression, scope)
        if not isinstance(values, list):
            raise TypeError(f'The value of "{expression}" is not type of list.')
        rendered = []
        for item_id, value in enumerate(values):
            item = value
            if keys and isinstance(value, (list, tuple)):
                item = dict(zip(keys, list(value), strict=False))
            elif keys and len(keys) == 1:
                item = {keys[0]: value}
            item_scope = self._scope(scope.variables, scope.current_task, item)
            rendered.append(
                ActionSpec(
                    item_id,
                    evaluate(task.action, item_scope),
                    evaluate(task.input or {}, item_scope),
                )
            )
        return rendered

    def mark_running(self, request: TaskRequest) -> None:
        """Record that a task's actions are being requested (Orquesta marks them running
        before they are)."""
        if request.itemized and request.items_count == 0:
            self.update_task(request.task_id, request.route, ActionEvent(m.RUNNING))
        for action in request.actions:
            self.update_task(
                request.task_id,
                request.route,
                ActionEvent(m.RUNNING, item_id=action.item_id, previous=m.UNSET),
            )

    # --- task events -------------------------------------------------------------------------

    def update_task(
        self, task_id: str, route: int, event: ActionEvent | CommandEvent
    ) -> dict[str, Any]:
        """Apply an action event (or an engine command) to a task; evaluate its transitions
        when it completes; return the task's entry."""
        if not self.graph.has_task(task_id):
            raise ConductorError(f'Task "{task_id}" does not exist.')
        staged = self.staged(task_id, route)
        entry = self.entry(task_id, route)
        if staged is None and entry is None:
            raise ConductorError(f'Task "{task_id}" is not staged or has not started yet.')
        if entry is None or task_id in ENGINE_COMMANDS:
            assert staged is not None
            entry = self._add_entry(task_id, staged["route"], staged["ctxs"]["in"], staged["prev"])
        if entry.get("status") in m.COMPLETED and event.status in m.STARTING and staged:
            entry = self._add_entry(task_id, staged["route"], staged["ctxs"]["in"], staged["prev"])
        index = self.state.tasks[entry_key(task_id, route)]
        if event.status and staged is not None and "items" not in staged:
            self._unstage(task_id, route)
        itemized = staged is not None and "items" in staged
        if isinstance(event, ActionEvent) and event.item_id is not None and itemized:
            assert staged is not None
            _move_item(staged["items"], event)
        if event.status == m.FAILED:
            self.log_error(
                "",
                task_id=task_id,
                result=event.result,
                message="Execution failed. See result for details.",
            )
        old = entry.get("status", m.UNSET)
        entry["status"] = m.next_task_status(old, self._task_event(staged, event))
        new = entry["status"]
        if new == m.RETRYING:
            entry["retry"]["tally"] += 1
            self._unstage(task_id, route)
            self._stage(
                task_id,
                route,
                contexts=entry["ctxs"]["in"],
                prev=entry["prev"],
                retry=entry["retry"],
            )
        commands: list[tuple[str, int]] = []
        if new in m.COMPLETED:
            result = self._task_result(task_id, event)
            if not (self.definition.task(task_id).items and new in m.ABENDED):
                self._unstage(task_id, route)
            else:
                still = self.staged(task_id, route)
                if still is not None:
                    still["completed"] = True
            current = self.context(entry["ctxs"]["in"])
            scope = self._scope(current, CurrentTask(task_id, entry["route"], result))
            if self.state.status in m.ACTIVE and self._should_retry(entry, scope):
                return self.update_task(task_id, route, RETRY_EVENT)
            if new != old:
                commands = self._take_transitions(entry, index, scope)
        self._apply_task_event_to_workflow(entry)
        for command, command_route in commands:
            self.update_task(command, command_route, ENGINE_EVENTS[command])
        if self.state.status in m.COMPLETED:
            entry["term"] = True
        return entry

    def _task_event(self, staged: dict[str, Any] | None, event: ActionEvent | CommandEvent) -> str:
        if isinstance(event, CommandEvent):
            return event.name
        name = f"action_{event.status}"
        if event.item_id is None or staged is None or "items" not in staged:
            return name
        if event.status not in m.ITEM_QUALIFIED:
            return name
        others = dict(staged["items"]["statuses"])
        others[event.status] = others.get(event.status, 0) - 1
        active = _count(others, m.ACTIVE)
        name += "_task_active" if active else "_task_dormant"
        if not active and _count(others, {m.PENDING, m.PAUSED}):
            return name + "_items_paused"
        if not active and others.get(m.CANCELED, 0) > 0:
            return name + "_items_canceled"
        if not active and _count(others, m.ABENDED):
            return name + "_items_failed"
        incomplete = _count(others, set(others) - m.COMPLETED)
        return name + ("_items_incomplete" if incomplete else "_items_completed")

    def _task_result(self, task_id: str, event: ActionEvent | CommandEvent) -> Any:
        if isinstance(event, CommandEvent):
            return None
        if self.definition.task(task_id).items is None:
            return event.result
        if event.item_id is not None and event.accumulated is not None:
            return event.accumulated() or []
        return event.result or []

    def _add_entry(
        self, task_id: str, route: int, contexts: list[int], prev: dict[str, int]
    ) -> dict[str, Any]:
        if not self.graph.has_task(task_id):
            raise ConductorError(f'Task "{task_id}" does not exist.')
        entry: dict[str, Any] = {
            "id": task_id,
            "route": route,
            "ctxs": {"in": list(contexts or [0])},
            "prev": dict(prev or {}),
            "next": {},
        }
        retry = self.graph.retry.get(task_id)
        if retry is not None and "count" in retry:
            entry["retry"] = self._evaluated_retry(task_id, retry, entry["ctxs"]["in"])
        self.state.sequence.append(entry)
        self.state.tasks[entry_key(task_id, route)] = len(self.state.sequence) - 1
        return entry

    def _evaluated_retry(
        self, task_id: str, retry: Mapping[str, Any], contexts: list[int]
    ) -> dict[str, Any]:
        evaluated = dict(retry)
        evaluated["tally"] = 0
        scope = self._scope(self.context(contexts))
        for key in ("delay", "count"):
            if isinstance(evaluated.get(key), str):
                value = evaluate(evaluated[key], scope)
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f'The retry {key} for task "{task_id}" is not an integer.')
                evaluated[key] = value
        return evaluated

    def _should_retry(self, entry: dict[str, Any], scope: Scope) -> bool:
        retry = entry.get("retry")
        if not retry:
            return False
        if retry["tally"] >= retry["count"]:
            return False
        if entry.get("status") in m.ABENDED and retry.get("when") is None:
            return True
        if retry.get("when") is None:
            return False
        return bool(evaluate(retry["when"], scope))

    def _take_transitions(
        self, entry: dict[str, Any], index: int, scope: Scope
    ) -> list[tuple[str, int]]:
        task_id, route = entry["id"], entry["route"]
        edges = self.graph.next_edges(task_id)
        if not edges:
            entry["term"] = True
        commands: list[tuple[str, int]] = []
        ready_tasks: list[dict[str, Any]] = []
        manual_fail = False
        for edge in edges:
            try:
                satisfied = all(bool(evaluate(c, scope)) for c in edge.criteria)
            except ExpressionError as error:
                self.log_error(error, task_id=task_id, route=route, transition=edge.id)
                self.request_status(m.FAILED)
                continue
            entry["next"][edge.id] = satisfied
            if not satisfied:
                continue
            published, errors = self._publish(task_id, edge, scope)
            if errors:
                for problem in errors:
                    self.log_error(problem, task_id=task_id, route=route, transition=edge.id)
                self.request_status(m.FAILED)
                continue
            outgoing = list(entry["ctxs"]["in"])
            if published:
                new_index = self.runtime.add_context(published)
                outgoing.append(new_index)
                entry["ctxs"]["out"] = {edge.id: new_index}
            staged = self._stage_next(edge, route, outgoing, index)
            if edge.target in ENGINE_COMMANDS:
                commands.append((edge.target, staged["route"]))
                manual_fail = manual_fail or edge.target == "fail"
            elif staged["ready"]:
                ready_tasks.append(staged)
        if manual_fail:
            for staged in ready_tasks:
                staged["run_on_fail"] = True
        return commands

    def _publish(
        self, task_id: str, edge: Edge, scope: Scope
    ) -> tuple[dict[str, Any], list[ExpressionError]]:
        transition = self.definition.task(task_id).transitions[edge.ref]
        rolling = dict(scope.variables)
        published: dict[str, Any] = {}
        errors = []
        if edge.target in transition.do:
            for name, expression in transition.publish:
                try:
                    value = evaluate(
                        expression, self._scope(rolling, scope.current_task, scope.current_item)
                    )
                except ExpressionError as error:
                    errors.append(error)
                    continue
                rolling[name] = value
                published[name] = value
        return published, errors

    def _stage_next(
        self, edge: Edge, route: int, outgoing: list[int], index: int
    ) -> dict[str, Any]:
        target_route = self._route_for(edge, route)
        staged = self.staged(edge.target, target_route)
        if staged is not None:
            extra = list(outgoing)
            if 0 in extra:
                extra.remove(0)
            staged["ctxs"]["in"].extend(extra)
            staged["prev"][edge.back_id] = index
            staged.pop("items", None)
            staged.pop("completed", None)
        else:
            staged = self._stage(
                edge.target,
                target_route,
                contexts=outgoing,
                prev={edge.back_id: index},
                ready=False,
            )
        staged["ready"] = self.inbound_status(edge.target, route) == SATISFIED
        return staged

    def _route_for(self, edge: Edge, route: int) -> int:
        if not self.graph.is_split(edge.target) or self.graph.in_cycle(edge.target):
            return route
        details = list(self.state.routes[route])
        if edge.back_id in details:
            return route
        self.state.routes.append([*details, edge.back_id])
        return len(self.state.routes) - 1

    def inbound_status(self, task_id: str, route: int) -> str:
        """Whether enough of a task's inbound transitions are satisfied on ``route``."""
        inbound = self.graph.prev_edges(task_id)
        evaluation: dict[str, bool | None] = {edge.source: None for edge in inbound}
        barrier = self.graph.barrier(task_id) or 1
        required = len(evaluation) if barrier == "*" else int(barrier)
        for edge in inbound:
            source = self.entry(edge.source, route)
            if source is None:
                continue
            satisfied = bool(source["next"].get(edge.id))
            if not evaluation[edge.source]:
                evaluation[edge.source] = satisfied
        if list(evaluation.values()).count(True) >= required:
            return SATISFIED
        if None in evaluation.values() and (self.has_active_tasks or self.has_staged_tasks):
            return IN_PROGRESS
        return NOT_SATISFIED

    def _has_next(self, task_id: str, route: int, *, join_ready: bool = True) -> bool:
        entry = self.entry(task_id, route)
        if entry is None or entry.get("status") not in m.COMPLETED:
            return False
        for edge in self.graph.next_edges(task_id):
            if edge.target == "continue" or not entry["next"].get(edge.id):
                continue
            if self.graph.is_barrier(edge.target):
                if not join_ready:
                    return True
                if self.inbound_status(edge.target, route) == NOT_SATISFIED:
                    continue
            return True
        return False

    def _apply_task_event_to_workflow(self, entry: dict[str, Any]) -> None:
        task_id, route = entry["id"], entry["route"]
        status = entry.get("status", m.UNSET)
        event = f"task_{status}"
        has_next = self._has_next(task_id, route)
        if status in m.ABENDED and (has_next or self._has_next(task_id, route, join_ready=False)):
            event = "task_remediated"
        if event in m.CONDITIONAL_TASK_EVENTS:
            event += "_workflow_active" if self.has_active_tasks else "_workflow_dormant"
        if event.startswith(("task_succeeded", "task_remediated")):
            if self._has_status({m.CANCELING, m.CANCELED}):
                event += "_canceled"
            elif self._has_status({m.PAUSING, m.PAUSED, m.PENDING}):
                event += "_paused"
            elif self.has_staged_tasks or has_next:
                event += "_incomplete"
            else:
                event += "_completed"
        moved = m.next_workflow_status(self.state.status, event)
        if moved is None:
            return
        self.state.status = moved
        if moved in m.COMPLETED:
            for staged in self.unreachable_joins():
                self.state.status = m.FAILED
                self.log_error(
                    f'The join task|route "{staged["id"]}|{staged["route"]}" is partially '
                    "satisfied but unreachable.",
                    task_id=staged["id"],
                    route=staged["route"],
                    message=(
                        f'UnreachableJoinError: The join task|route "{staged["id"]}|'
                        f'{staged["route"]}" is partially satisfied but unreachable.'
                    ),
                )

    def unreachable_joins(self) -> list[dict[str, Any]]:
        """Staged join tasks that can no longer be satisfied."""
        return [
            staged
            for staged in self.state.staged
            if staged["id"] in self.graph.barriers
            and not staged["ready"]
            and self.inbound_status(staged["id"], staged["route"]) == NOT_SATISFIED
        ]

    # --- output ------------------------------------------------------------------------------

    def terminal_context(self) -> dict[str, Any]:
        """The context the workflow ended with: its terminal tasks' contexts merged."""
        terminal = [entry for entry in self.state.sequence if entry.get("term")]
        if not terminal:
            return {}
        merged = self.context(terminal[0]["ctxs"]["in"])
        for entry in terminal[1:]:
            indexes = list(entry["ctxs"]["in"])
            if 0 in indexes:
                indexes.remove(0)
            merged = merge(merged, self.context(indexes))
        return merged

    def render_output(self) -> None:
        """Render the output once the workflow completed; an error fails it (unless it ended
        timed out, abandoned or canceled)."""
        if self.state.status not in m.COMPLETED or self.state.output:
            return
        rolling = dict(self.terminal_context())
        outputs: dict[str, Any] = {}
        errors = []
        for name, expression in self.definition.output:
            try:
                value = evaluate(expression, self._scope(rolling))
            except ExpressionError as error:
                errors.append(error)
                continue
            rolling[name] = value
            outputs[name] = value
        if outputs:
            self.state.output = outputs
        if errors:
            for problem in errors:
                self.log_error(problem)
            if self.state.status not in (m.EXPIRED, m.ABANDONED, m.CANCELED):
                self.request_status(m.FAILED)

    # --- re-run ------------------------------------------------------------------------------

    def rerun(
        self,
        tasks: Sequence[tuple[str, int, bool]] = (),
        failed_items: Callable[[str, int], list[int]] | None = None,
    ) -> None:
        """Re-run a completed workflow from the given (task, route, reset items) occurrences,
        or from its failed terminal tasks when none are given; ``failed_items`` names the
        failed items of a with-items task, which run again."""
        if self.state.status not in m.COMPLETED:
            raise ConductorError("Unable to rerun workflow because it is not in a completed state.")
        requested = {entry_key(task, route): (task, route, reset) for task, route, reset in tasks}
        unknown = [
            f"{task}|{route}"
            for key, (task, route, _) in requested.items()
            if key not in self.state.tasks
        ]
        if unknown:
            raise ConductorError(
                "Unable to rerun task|route(s) because it doesn't exist or isn't rerunnable: "
                + ", ".join(unknown)
            )
        if requested:
            chosen = self._collapse(requested)
            candidates = [
                (self.state.tasks[key], self.state.sequence[self.state.tasks[key]])
                for key in requested
                if key in chosen
            ]
        else:
            candidates = [
                (index, entry)
                for index, entry in enumerate(self.state.sequence)
                if entry.get("term") and entry.get("status") in m.ABENDED
            ]
        self.state.reruns.append([index for index, _ in candidates])
        for _, entry in sorted(candidates, key=lambda pair: (pair[1]["id"], pair[1]["route"])):
            found = requested.get(entry_key(entry["id"], entry["route"]))
            self._rerun_task(entry, bool(found and found[2]), failed_items)
        for entry in self.state.sequence:
            if entry.get("term") and any(entry.get("next", {}).values()):
                entry.pop("term", None)
        self.state.output = None
        self.state.status = m.RESUMING

    def _collapse(self, requested: Mapping[str, tuple[str, int, bool]]) -> set[str]:
        """Leave out a requested task whose run follows from every other request's."""
        following = {
            key: {index for index, _ in self._followers(task, route)}
            for key, (task, route, _) in requested.items()
        }
        if len(requested) == 1:
            return set(following)
        return {
            key
            for key, indexes in following.items()
            if any(indexes - other for other in following.values())
        }

    def _followers(self, task_id: str, route: int) -> list[tuple[int, dict[str, Any]]]:
        """The occurrence of a task and the occurrences its transitions led to directly."""
        start = self.state.tasks[entry_key(task_id, route)]
        found = [(start, self.state.sequence[start])]
        for index, entry in enumerate(self.state.sequence):
            for back in entry["prev"].values():
                previous = self.state.sequence[back]
                if previous["id"] == task_id and previous["route"] == route:
                    found.append((index, entry))
        return found

    def _rerun_task(
        self,
        entry: dict[str, Any],
        reset_items: bool,
        failed_items: Callable[[str, int], list[int]] | None,
    ) -> None:
        task_id, route = entry["id"], entry["route"]
        contexts, prev = list(entry["ctxs"]["in"]), dict(entry["prev"])
        entry.pop("term", None)
        staged = self.staged(task_id, route)
        if staged is not None:
            staged.pop("completed", None)
        self.state.errors[:] = [e for e in self.state.errors if e.get("task_id") != task_id]
        items = staged.get("items") if staged is not None else None
        if self.definition.task(task_id).items is not None and items:
            if reset_items:
                again = [i for i in range(int(items["next"])) if i not in items["redo"]]
            else:
                again = [i for i in (failed_items(task_id, route) if failed_items else [])]
            items["redo"] = sorted(set(items["redo"]) | set(again))
            _items_to_run_again(items, reset_items)
        else:
            self._add_entry(task_id, route, contexts, prev)
            self._stage(task_id, route, contexts=contexts, prev=prev)
        for _, later in self._followers(task_id, route):
            later.pop("term", None)


def _count(counts: Mapping[str, int], statuses: set[str] | frozenset[str]) -> int:
    return sum(n for status, n in counts.items() if status in statuses)


def _items_active(staged: Mapping[str, Any]) -> bool:
    items = staged.get("items")
    return isinstance(items, Mapping) and _count(items["statuses"], m.ACTIVE) > 0


def _move_item(items: dict[str, Any], event: ActionEvent) -> None:
    """Count an item's new status (and, for an item starting, take it off the waiting list)."""
    item_id = event.item_id
    assert item_id is not None
    previous = event.previous or m.UNSET
    counts = items["statuses"]
    if previous == m.UNSET:
        if item_id in items["redo"]:
            items["redo"].remove(item_id)
        elif item_id >= items["next"]:
            items["next"] = item_id + 1
    counts[previous] = counts.get(previous, 0) - 1
    if counts[previous] <= 0:
        counts.pop(previous)
    counts[event.status] = counts.get(event.status, 0) + 1


def _items_to_run_again(items: dict[str, Any], everything: bool) -> None:
    """Count the items set to run again as not run: every item, or the failed ones."""
    counts = items["statuses"]
    again = sum(n for status, n in counts.items() if everything or status in m.ABENDED)
    for status in list(counts):
        if everything or status in m.ABENDED:
            counts.pop(status)
    if again:
        counts[m.UNSET] = again
