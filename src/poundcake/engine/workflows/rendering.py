"""Rendering what a workflow runs next: each ready task's action and input, evaluated in the
task's context, its delay, and for a with-items task its items.

A with-items task's items are all rendered once, when the task starts (Orquesta renders them
again at every step, which makes a long list cost more per item the longer it is); the service
stores them, and later steps take the next ones by id within the concurrency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from poundcake.engine.workflows import machines as m
from poundcake.engine.workflows.events import ActionEvent, ActionSpec, TaskRequest
from poundcake.engine.workflows.expressions import CurrentTask, ExpressionError, Scope, evaluate
from poundcake.engine.workflows.state import item_window

if TYPE_CHECKING:
    from poundcake.engine.workflows.conductor import Conductor


def ready_tasks(conductor: Conductor) -> list[TaskRequest]:
    """The staged tasks ready to run, rendered; a rendering error fails the workflow."""
    staged = conductor.ready_staged()
    remediation = []
    if conductor.state.status == m.FAILED:
        remediation = [s for s in staged if s.get("run_on_fail")]
    if conductor.state.status not in m.RUNNING_STATUSES and not remediation:
        return []
    requests = []
    failed = False
    for entry in remediation or staged:
        try:
            request = _render_task(conductor, entry)
        except (ExpressionError, TypeError, ValueError) as error:
            failed = True
            conductor.log_error(error, task_id=entry["id"], route=entry["route"])
            continue
        if request.actions or request.items_count == 0:
            requests.append(request)
    if failed:
        conductor.request_status(m.FAILED)
        return []
    return sorted(requests, key=lambda r: (r.task_id, r.route))


def _render_task(conductor: Conductor, staged: dict[str, Any]) -> TaskRequest:
    task_id, route = staged["id"], staged["route"]
    task = conductor.definition.task(task_id)
    variables = conductor.context(staged["ctxs"]["in"])
    scope = conductor.scope(variables, CurrentTask(task_id, route))
    request = TaskRequest(task_id, route, [], list(staged["ctxs"]["in"]))
    if task.items is None:
        request.actions = [
            ActionSpec(None, evaluate(task.action, scope), evaluate(task.input or {}, scope))
        ]
    else:
        _render_items(conductor, staged, scope, request)
    if task.delay:
        delay = evaluate(task.delay, scope) if isinstance(task.delay, str) else task.delay
        if not isinstance(delay, int) or isinstance(delay, bool):
            raise TypeError("The value of task delay is not type of integer.")
        request.delay = delay
    if "retry" in staged:
        request.delay = staged["retry"].get("delay") or 0
    return request


def _render_items(
    conductor: Conductor, staged: dict[str, Any], scope: Scope, request: TaskRequest
) -> None:
    task = conductor.definition.task(request.task_id)
    assert task.items is not None
    items = staged.get("items")
    if not items:
        rendered = _render_all_items(conductor, task.items.expression, task.items.keys, scope, task)
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
    window = item_window(items)
    if not window:
        return
    if request.items is not None:
        request.actions = [request.items[item_id] for item_id in window]
    else:
        request.actions = conductor.runtime.item_specs(request.task_id, request.route, window)


def _render_all_items(
    conductor: Conductor, expression: str, keys: tuple[str, ...] | None, scope: Scope, task: Any
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
        item_scope = conductor.scope(scope.variables, scope.current_task, item)
        rendered.append(
            ActionSpec(
                item_id,
                evaluate(task.action, item_scope),
                evaluate(task.input or {}, item_scope),
            )
        )
    return rendered


def mark_running(conductor: Conductor, request: TaskRequest) -> None:
    """Record that a task's actions are being requested (Orquesta marks them running
    before they are)."""
    if request.itemized and request.items_count == 0:
        conductor.update_task(request.task_id, request.route, ActionEvent(m.RUNNING))
    for action in request.actions:
        conductor.update_task(
            request.task_id,
            request.route,
            ActionEvent(m.RUNNING, item_id=action.item_id, previous=m.UNSET),
        )
