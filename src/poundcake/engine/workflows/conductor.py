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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from poundcake.engine.workflows import machines as m
from poundcake.engine.workflows.definition import ENGINE_COMMANDS, WorkflowDefinition
from poundcake.engine.workflows.events import (
    ENGINE_EVENTS,
    RETRY_EVENT,
    ActionEvent,
    CommandEvent,
    ConductorError,
    TaskRequest,
    WorkflowRuntime,
)
from poundcake.engine.workflows.expressions import (
    NO_ITEM,
    CurrentTask,
    ExpressionError,
    Scope,
    evaluate,
)
from poundcake.engine.workflows.graph import Edge, WorkflowGraph
from poundcake.engine.workflows.rendering import mark_running, ready_tasks
from poundcake.engine.workflows.rerun import rerun
from poundcake.engine.workflows.state import (
    WorkflowState,
    count_statuses,
    entry_key,
    items_active,
    merge,
    move_item,
)

SATISFIED = "satisfied"
IN_PROGRESS = "in_progress"
NOT_SATISFIED = "not_satisfied"


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
                rolling[name] = evaluate(value, self.scope(rolling))
            except ExpressionError as error:
                errors.append(error)
        for name, value in self.definition.vars:
            try:
                rolling[name] = evaluate(value, self.scope(rolling))
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
            self.stage(name, 0, contexts=[0], ready=True)

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

    def ready_staged(self) -> list[dict[str, Any]]:
        return [s for s in self.state.staged if s["ready"] and not s.get("completed")]

    @property
    def has_staged_tasks(self) -> bool:
        """Whether a task is ready to run."""
        return bool(self.ready_staged())

    def staged(self, task_id: str, route: int) -> dict[str, Any] | None:
        """The staged entry of a task on a route."""
        for staged in self.state.staged:
            if staged["id"] == task_id and staged["route"] == route:
                return staged
        return None

    def stage(
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
        if staged is not None and not items_active(staged):
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

    def scope(
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
            event += "_task_active" if count_statuses(counts, m.ACTIVE) else "_task_dormant"
            incomplete = count_statuses(counts, set(counts) - m.COMPLETED)
            event += "_items_incomplete" if incomplete else "_items_completed"
        entry["status"] = m.next_task_status(entry.get("status", m.UNSET), event)

    # --- what to run next --------------------------------------------------------------------

    def next_tasks(self) -> list[TaskRequest]:
        """The staged tasks ready to run, rendered; a rendering error fails the workflow."""
        return ready_tasks(self)

    def mark_running(self, request: TaskRequest) -> None:
        """Record that a task's actions are being requested (Orquesta marks them running
        before they are)."""
        mark_running(self, request)

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
            entry = self.add_entry(task_id, staged["route"], staged["ctxs"]["in"], staged["prev"])
        if entry.get("status") in m.COMPLETED and event.status in m.STARTING and staged:
            entry = self.add_entry(task_id, staged["route"], staged["ctxs"]["in"], staged["prev"])
        index = self.state.tasks[entry_key(task_id, route)]
        if event.status and staged is not None and "items" not in staged:
            self._unstage(task_id, route)
        itemized = staged is not None and "items" in staged
        if isinstance(event, ActionEvent) and event.item_id is not None and itemized:
            assert staged is not None
            move_item(staged["items"], event.item_id, event.previous, event.status)
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
            self.stage(
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
            scope = self.scope(current, CurrentTask(task_id, entry["route"], result))
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
        active = count_statuses(others, m.ACTIVE)
        name += "_task_active" if active else "_task_dormant"
        if not active and count_statuses(others, {m.PENDING, m.PAUSED}):
            return name + "_items_paused"
        if not active and others.get(m.CANCELED, 0) > 0:
            return name + "_items_canceled"
        if not active and count_statuses(others, m.ABENDED):
            return name + "_items_failed"
        incomplete = count_statuses(others, set(others) - m.COMPLETED)
        return name + ("_items_incomplete" if incomplete else "_items_completed")

    def _task_result(self, task_id: str, event: ActionEvent | CommandEvent) -> Any:
        if isinstance(event, CommandEvent):
            return None
        if self.definition.task(task_id).items is None:
            return event.result
        if event.item_id is not None and event.accumulated is not None:
            return event.accumulated() or []
        return event.result or []

    def add_entry(
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
        scope = self.scope(self.context(contexts))
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
                        expression, self.scope(rolling, scope.current_task, scope.current_item)
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
            staged = self.stage(
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
                value = evaluate(expression, self.scope(rolling))
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
        """Re-run the completed workflow from named task occurrences
        (:mod:`poundcake.engine.workflows.rerun`)."""
        rerun(self, tasks, failed_items)
