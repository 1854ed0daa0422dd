"""The ``orquesta`` runner.

An Orquesta workflow does not run in an action runner's thread: it is conducted by the workflow
engines, one transition at a time, from the database. The scheduler hands ``orquesta``
executions to ``st2workflowengine``, which hosts this runner and gives it a
:class:`~poundcake.engine.runners.base.WorkflowHost` in its services. ``pre_run`` reads the
workflow definition from the action's entry point; ``run`` starts the workflow, or re-runs an
earlier one from named tasks (``st2 execution re-run --tasks``), and returns ``running`` while
the workflow goes on, or ``failed`` with StackStorm's ``{"errors": [...], "output": None}``.

The ``notify`` runner parameter lists the tasks whose action executions carry the workflow's own
``notify`` settings (:class:`~poundcake.engine.workflows.requests.TaskRequester` passes them on);
a task it names that the workflow does not have fails the workflow, as in StackStorm.
"""

from __future__ import annotations

from typing import Any

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import Runner, RunnerOutcome
from poundcake.engine.workflows.definition import DefinitionError
from poundcake.engine.workflows.service import read_definition
from poundcake.exceptions import ValidationError


class OrquestaRunner(Runner):
    """Starts (or re-runs) an Orquesta workflow through the workflow engine hosting it."""

    runner_type = "orquesta"

    def pre_run(self) -> None:
        if self.services.workflows is None:
            raise ValidationError(
                "the orquesta runner runs in st2workflowengine; this execution reached a "
                "process that cannot conduct workflows"
            )
        path = self.request.entry_point_path
        if path is None:
            raise ValidationError(
                f'Action "{self.request.action_ref}" has no entry point; an orquesta action '
                "names its workflow definition in entry_point."
            )
        self._document: dict[str, Any] = {}
        try:
            self._document = read_definition(path)
        except DefinitionError as error:
            self._problem = str(error)
        else:
            self._problem = unknown_notify_tasks(
                self.request.runner_parameters.get("notify") or [], self._document
            )

    def run(self) -> RunnerOutcome:
        host = self.services.workflows
        assert host is not None, "pre_run() was not called"
        if self._problem:
            result = {"errors": [{"message": self._problem}], "output": None}
            return RunnerOutcome(ExecutionStatus.FAILED, result)
        rerun = dict(self.request.context.get("re-run") or {})
        if rerun.get("ref") and rerun.get("tasks"):
            return host.rerun(
                self.request,
                previous_execution_id=str(rerun["ref"]),
                tasks=[str(task) for task in rerun.get("tasks") or []],
                reset=[str(task) for task in rerun.get("reset") or []],
            )
        return host.start(self.request, self._document)


def unknown_notify_tasks(notify: list[Any], document: dict[str, Any]) -> str:
    """StackStorm's message for tasks in ``notify`` the workflow does not have, else ""."""
    tasks = document.get("tasks")
    known = set(tasks) if isinstance(tasks, dict) else set()
    unknown = sorted({str(task) for task in notify} - known)
    if not unknown:
        return ""
    return (
        "The following tasks in the notify parameter do not exist in the workflow definition: "
        f"{', '.join(unknown)}."
    )
