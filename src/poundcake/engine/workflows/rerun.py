"""Re-running a completed workflow from named tasks (``st2 execution re-run --tasks``).

The workflow's state is taken up where it ended: each named task occurrence (or, when none is
named, every failed terminal task) gets a new occurrence staged on its route with the context it
first had; a with-items task runs its failed items again (all of them when they are reset);
tasks that had more to do are no longer terminal; the output is cleared and the workflow
resumes. As in Orquesta, a named task that follows from another named one is left to run from
it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from poundcake.engine.workflows import machines as m
from poundcake.engine.workflows.events import ConductorError
from poundcake.engine.workflows.state import entry_key, items_to_run_again

if TYPE_CHECKING:
    from poundcake.engine.workflows.conductor import Conductor


def rerun(
    conductor: Conductor,
    tasks: Sequence[tuple[str, int, bool]] = (),
    failed_items: Callable[[str, int], list[int]] | None = None,
) -> None:
    """Re-run a completed workflow from the given (task, route, reset items) occurrences,
    or from its failed terminal tasks when none are given; ``failed_items`` names the
    failed items of a with-items task, which run again."""
    if conductor.state.status not in m.COMPLETED:
        raise ConductorError("Unable to rerun workflow because it is not in a completed state.")
    requested = {entry_key(task, route): (task, route, reset) for task, route, reset in tasks}
    unknown = [
        f"{task}|{route}"
        for key, (task, route, _) in requested.items()
        if key not in conductor.state.tasks
    ]
    if unknown:
        raise ConductorError(
            "Unable to rerun task|route(s) because it doesn't exist or isn't rerunnable: "
            + ", ".join(unknown)
        )
    if requested:
        chosen = _collapse(conductor, requested)
        candidates = [
            (conductor.state.tasks[key], conductor.state.sequence[conductor.state.tasks[key]])
            for key in requested
            if key in chosen
        ]
    else:
        candidates = [
            (index, entry)
            for index, entry in enumerate(conductor.state.sequence)
            if entry.get("term") and entry.get("status") in m.ABENDED
        ]
    conductor.state.reruns.append([index for index, _ in candidates])
    for _, entry in sorted(candidates, key=lambda pair: (pair[1]["id"], pair[1]["route"])):
        found = requested.get(entry_key(entry["id"], entry["route"]))
        _rerun_task(conductor, entry, bool(found and found[2]), failed_items)
    for entry in conductor.state.sequence:
        if entry.get("term") and any(entry.get("next", {}).values()):
            entry.pop("term", None)
    conductor.state.output = None
    conductor.state.status = m.RESUMING


def _collapse(conductor: Conductor, requested: Mapping[str, tuple[str, int, bool]]) -> set[str]:
    """Leave out a requested task whose run follows from every other request's."""
    following = {
        key: {index for index, _ in _followers(conductor, task, route)}
        for key, (task, route, _) in requested.items()
    }
    if len(requested) == 1:
        return set(following)
    return {
        key
        for key, indexes in following.items()
        if any(indexes - other for other in following.values())
    }


def _followers(conductor: Conductor, task_id: str, route: int) -> list[tuple[int, dict[str, Any]]]:
    """The occurrence of a task and the occurrences its transitions led to directly."""
    start = conductor.state.tasks[entry_key(task_id, route)]
    found = [(start, conductor.state.sequence[start])]
    for index, entry in enumerate(conductor.state.sequence):
        for back in entry["prev"].values():
            previous = conductor.state.sequence[back]
            if previous["id"] == task_id and previous["route"] == route:
                found.append((index, entry))
    return found


def _rerun_task(
    conductor: Conductor,
    entry: dict[str, Any],
    reset_items: bool,
    failed_items: Callable[[str, int], list[int]] | None,
) -> None:
    task_id, route = entry["id"], entry["route"]
    contexts, prev = list(entry["ctxs"]["in"]), dict(entry["prev"])
    entry.pop("term", None)
    staged = conductor.staged(task_id, route)
    if staged is not None:
        staged.pop("completed", None)
    conductor.state.errors[:] = [e for e in conductor.state.errors if e.get("task_id") != task_id]
    items = staged.get("items") if staged is not None else None
    if conductor.definition.task(task_id).items is not None and items:
        if reset_items:
            again = [i for i in range(int(items["next"])) if i not in items["redo"]]
        else:
            again = [i for i in (failed_items(task_id, route) if failed_items else [])]
        items["redo"] = sorted(set(items["redo"]) | set(again))
        items_to_run_again(items, reset_items)
    else:
        conductor.add_entry(task_id, route, contexts, prev)
        conductor.stage(task_id, route, contexts=contexts, prev=prev)
    for _, later in _followers(conductor, task_id, route):
        later.pop("term", None)
