"""The ``action-chain`` runner.

Each task runs as a child execution through :attr:`RunnerServices.children`: requested with the
rendered parameters and ``context.chain`` (the task), then waited for. A finished task's result
is recorded under its name and its ``publish`` rendered into the chain's variables (also when it
failed, as StackStorm does); then ``on-success`` or ``on-failure`` names the next task, and a
missing one ends the chain. The chain ends with the status of the last task it ran (succeeded,
failed or timeout), so a failure handled by an ``on-failure`` path that then succeeds is a
success. A canceled task, or a cancel of the chain, ends it canceled.

A chain that cannot go on (a render error, an action that does not exist, more task runs than
``max_task_runs``) fails with ``result.error``. The result is StackStorm's ``{"tasks": [...],
"published": {...}}``; ``published`` only with ``display_published``. Task and chain ``notify``
and ``skip_notify`` are accepted but no notifications are sent for tasks.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from poundcake.engine.documents import isoformat
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.rendering import RenderError
from poundcake.engine.runners.base import (
    ChildExecutions,
    OutputSink,
    Runner,
    RunnerOutcome,
    RunnerRequest,
    RunnerServices,
)
from poundcake.engine.runners.chain.context import ChainContext, datastore_variables
from poundcake.engine.runners.chain.definition import ActionChain, ChainTask, load_chain
from poundcake.exceptions import NotFoundError, PoundCakeError, ValidationError

logger = logging.getLogger(__name__)

S = ExecutionStatus
DEFAULT_MAX_TASK_RUNS = 1000
PUBLISHED_KEY = "published"
_CHAIN_STATUS = {S.SUCCEEDED: S.SUCCEEDED, S.TIMEOUT: S.TIMEOUT, S.CANCELED: S.CANCELED}


class ChainError(Exception):
    """The chain cannot go on; the message becomes ``result.error``."""


@dataclass(frozen=True)
class TaskRun:
    """One finished task: its status, its entry in ``result.tasks``, and whether a child ran."""

    status: ExecutionStatus
    entry: dict[str, Any]
    ran: bool


class ActionChainRunner(Runner):
    """Runs an ActionChain workflow, one child execution per task."""

    runner_type = "action-chain"

    def __init__(
        self, request: RunnerRequest, output: OutputSink, services: RunnerServices | None = None
    ) -> None:
        super().__init__(request, output, services)
        self._chain: ActionChain | None = None
        self._lock = threading.Lock()
        self._canceled = False
        self._current: str | None = None

    def pre_run(self) -> None:
        if self.services.children is None:
            raise ValidationError(
                "the action-chain runner needs child executions; run it in an action runner"
            )
        if self.request.entry_point_path is None:
            raise ValidationError(
                f'Action "{self.request.action_ref}" has no entry point; an action-chain '
                "action names its chain file in entry_point."
            )
        self._chain = load_chain(self.request.entry_point_path)

    def run(self) -> RunnerOutcome:
        chain, children = self._chain, self.services.children
        assert chain is not None and children is not None, "pre_run() was not called"
        parameters = self.request.runner_parameters
        display_published = bool(parameters.get("display_published", True))
        max_task_runs = int(parameters.get("max_task_runs") or DEFAULT_MAX_TASK_RUNS)
        result: dict[str, Any] = {"tasks": []}
        if display_published:
            result[PUBLISHED_KEY] = {}
        context = self._context()
        status = S.SUCCEEDED
        try:
            self._start(context, chain)
            task: ChainTask | None = chain.first()
            while task is not None:
                if self._is_canceled():
                    return RunnerOutcome(S.CANCELED, result)
                if len(result["tasks"]) >= max_task_runs:
                    raise ChainError(
                        f"The chain ran {max_task_runs} tasks, the most max_task_runs allows; "
                        f'stopped before task "{task.name}".'
                    )
                run = self._run_task(children, task, context)
                result["tasks"].append(run.entry)
                status = _CHAIN_STATUS.get(run.status, S.FAILED)
                if status == S.CANCELED:
                    return RunnerOutcome(S.CANCELED, result)
                if run.ran:
                    published = self._publish(context, task)
                    if display_published:
                        result[PUBLISHED_KEY].update(published)
                task = chain.next_task(task, succeeded=status == S.SUCCEEDED)
        except ChainError as stopped:
            logger.info("Chain %s failed: %s", self.request.execution_id, stopped)
            return RunnerOutcome(S.FAILED, {**result, "error": str(stopped)})
        if self._is_canceled():
            return RunnerOutcome(S.CANCELED, result)
        return RunnerOutcome(status, result)

    def cancel(self) -> None:
        with self._lock:
            self._canceled = True
            current = self._current
        if current is not None and self.services.children is not None:
            self.services.children.cancel(current)

    # --- one task -------------------------------------------------------------------------

    def _run_task(
        self, children: ChildExecutions, task: ChainTask, context: ChainContext
    ) -> TaskRun:
        created = datetime.now(UTC)
        try:
            parameters = context.task_parameters(task)
        except RenderError as error:
            raise ChainError(
                f'Failed to run task "{task.name}". Parameter rendering failed. {error}'
            ) from None
        try:
            execution_id = children.request(task.ref, parameters, {"chain": task.context()})
        except NotFoundError as error:
            raise ChainError(
                f'Failed to run task "{task.name}". Action with reference "{task.ref}" '
                f"doesn't exist. {error}"
            ) from None
        except PoundCakeError as error:
            refused = {"error": f'Failed running task "{task.name}". {error}'}
            context.record(task, refused)
            entry = _entry(task, None, S.FAILED, refused, created)
            return TaskRun(S.FAILED, entry, ran=False)
        logger.info(
            "Chain %s runs task %s as %s", self.request.execution_id, task.name, execution_id
        )
        self._follow(children, execution_id)
        try:
            status, child_result = children.wait(execution_id)
        finally:
            with self._lock:
                self._current = None
        context.record(task, child_result)
        return TaskRun(status, _entry(task, execution_id, status, child_result, created), ran=True)

    def _follow(self, children: ChildExecutions, execution_id: str) -> None:
        """Make ``execution_id`` the child a cancel stops, and stop it if the cancel came first."""
        with self._lock:
            self._current = execution_id
            canceled = self._canceled
        if canceled:
            children.cancel(execution_id)

    # --- rendering ------------------------------------------------------------------------

    def _context(self) -> ChainContext:
        request = self.request
        parent = {**request.context, "execution_id": request.execution_id}
        return ChainContext(
            parameters=dict(request.action_parameters),
            action_context={"parent": parent},
            config=request.pack_config,
            datastore=datastore_variables(self.services.datastore),
        )

    @staticmethod
    def _start(context: ChainContext, chain: ActionChain) -> None:
        try:
            context.start(chain.vars)
        except RenderError as error:
            raise ChainError(f"Failed initializing ``vars`` in chain. {error}") from None

    @staticmethod
    def _publish(context: ChainContext, task: ChainTask) -> dict[str, Any]:
        try:
            return context.publish(task)
        except RenderError as error:
            raise ChainError(
                f'Failed rendering the "publish" of task "{task.name}". {error}'
            ) from None

    def _is_canceled(self) -> bool:
        with self._lock:
            return self._canceled


def _entry(
    task: ChainTask,
    execution_id: str | None,
    status: ExecutionStatus,
    result: Any,
    created: datetime,
) -> dict[str, Any]:
    """One task as StackStorm lists it in ``result.tasks``."""
    return {
        "id": task.name,
        "name": task.name,
        "execution_id": execution_id,
        "workflow": None,
        "created_at": isoformat(created),
        "updated_at": isoformat(datetime.now(UTC)),
        "state": status.value,
        "result": result,
    }
