"""The ``action-chain`` runner.

Each task runs as a child execution through :attr:`RunnerServices.children`: requested with the
rendered parameters and ``context.chain`` (the task), then waited for. A finished task's result
is recorded under its name and its ``publish`` rendered into the chain's variables (also when it
failed, as StackStorm does); then ``on-success`` or ``on-failure`` names the next task, and a
missing one ends the chain. The chain ends with the status of the last task it ran (succeeded,
failed or timeout), so a failure handled by an ``on-failure`` path that then succeeds is a
success. A canceled task, or a cancel of the chain, ends it canceled.

Pause and resume, as StackStorm's chain does them: after each task the runner looks at its own
status, and a pause asked for meanwhile (``pausing``) stops the chain there, ``paused``. A task
that waits for a response (``pending``, an inquiry) or that paused (a sub-chain) pauses the chain
too. The outcome keeps the tasks run so far as the result and the chain's variables in
``context.vars``; no thread waits. When resumed, a runner runs the chain again: it restores the
results and variables, looks at the task it stopped on (a paused sub-chain is resumed and waited
for; an inquiry that was answered, or timed out, is taken as it ended) and goes on from there.
A resumed task that failed or timed out leads the chain down ``on-failure`` and, as in
StackStorm, ends the chain ``failed`` if there is none. That task's result is also reachable as
``<task>.result`` (``{{ task1.result.response.x }}``, as StackStorm's resumed chains read it),
and its ``publish`` is rendered only when it succeeded (StackStorm renders none there).

A chain that cannot go on (a render error, an action that does not exist, more task runs than
``max_task_runs``) fails with ``result.error``. The result is StackStorm's ``{"tasks": [...],
"published": {...}}``; ``published`` only with ``display_published``.

Notifications, as StackStorm's chain sends them: a task's execution carries the task's
``notify``, or else the chain's own, unless the task is listed in the ``skip_notify`` runner
parameter; an action with ``notify`` of its own keeps it. ``st2notifier`` posts them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from poundcake.engine.documents import isoformat
from poundcake.engine.executions.states import FAILED, ExecutionStatus
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
# Where a paused chain keeps its variables, as StackStorm does.
VARS_KEY = "vars"
_CHAIN_STATUS = {S.SUCCEEDED: S.SUCCEEDED, S.TIMEOUT: S.TIMEOUT, S.CANCELED: S.CANCELED}
# A task in one of these stops the chain, paused, until it is resumed.
WAITING = frozenset({S.PENDING, S.PAUSED})
# The chain's own statuses that say a pause was asked for (a resume may already have followed).
PAUSE_ASKED = frozenset({S.PAUSING, S.RESUMING})


@runtime_checkable
class ChainExecutions(ChildExecutions, Protocol):
    """Child executions as the chain needs them: settled waits, its own status, resuming."""

    def wait_settled(self, execution_id: str) -> tuple[ExecutionStatus, Any]: ...

    def workflow_status(self) -> ExecutionStatus: ...

    def resume(self, execution_id: str) -> None: ...


class ChainError(Exception):
    """The chain cannot go on; the message becomes ``result.error``."""


@dataclass(frozen=True)
class TaskRun:
    """One settled task: its status, its entry in ``result.tasks``, and whether a child ran."""

    status: ExecutionStatus
    entry: dict[str, Any]
    ran: bool


@dataclass(frozen=True)
class Next:
    """Where the chain goes after a task: the next task (None: the chain ends), the chain's
    status so far, and ``stop`` when it stops here (paused or canceled)."""

    task: ChainTask | None
    status: ExecutionStatus
    stop: ExecutionStatus | None = None


class ActionChainRunner(Runner):
    """Runs an ActionChain workflow, one child execution per task."""

    runner_type = "action-chain"

    def __init__(
        self, request: RunnerRequest, output: OutputSink, services: RunnerServices | None = None
    ) -> None:
        super().__init__(request, output, services)
        self._chain: ActionChain | None = None
        self._children: ChainExecutions | None = None
        self._lock = threading.Lock()
        self._canceled = False
        self._current: str | None = None

    def pre_run(self) -> None:
        children = self.services.children
        if not isinstance(children, ChainExecutions):
            raise ValidationError(
                "the action-chain runner needs child executions; run it in an action runner"
            )
        if self.request.entry_point_path is None:
            raise ValidationError(
                f'Action "{self.request.action_ref}" has no entry point; an action-chain '
                "action names its chain file in entry_point."
            )
        self._chain = load_chain(self.request.entry_point_path)
        self._children = children

    def run(self) -> RunnerOutcome:
        chain, children = self._chain, self._children
        assert chain is not None and children is not None, "pre_run() was not called"
        parameters = self.request.runner_parameters
        display_published = bool(parameters.get("display_published", True))
        max_task_runs = int(parameters.get("max_task_runs") or DEFAULT_MAX_TASK_RUNS)
        result = self._result_so_far(display_published)
        context = self._context()
        step = Next(chain.first(), S.SUCCEEDED)
        try:
            self._start(context, chain)
            if result["tasks"]:
                step = self._resume(children, chain, context, result)
            while step.stop is None and step.task is not None:
                task = step.task
                if self._is_canceled():
                    return self._outcome(S.CANCELED, result)
                if len(result["tasks"]) >= max_task_runs:
                    raise ChainError(
                        f"The chain ran {max_task_runs} tasks, the most max_task_runs allows; "
                        f'stopped before task "{task.name}".'
                    )
                run = self._run_task(children, task, context)
                result["tasks"].append(run.entry)
                step = self._after(children, chain, task, run, context, result, _CHAIN_STATUS)
        except ChainError as stopped:
            logger.info("Chain %s failed: %s", self.request.execution_id, stopped)
            return self._outcome(S.FAILED, {**result, "error": str(stopped)})
        if step.stop == S.PAUSED:
            logger.info("Chain %s paused", self.request.execution_id)
            return RunnerOutcome(S.PAUSED, result, {VARS_KEY: dict(context.variables)})
        if step.stop == S.CANCELED or self._is_canceled():
            return self._outcome(S.CANCELED, result)
        return self._outcome(step.status, result)

    def cancel(self) -> None:
        with self._lock:
            self._canceled = True
            current = self._current
        if current is not None and self.services.children is not None:
            self.services.children.cancel(current)

    def _outcome(self, status: ExecutionStatus, result: dict[str, Any]) -> RunnerOutcome:
        """A final outcome; a resumed chain's saved variables go from its context."""
        saved = {VARS_KEY: None} if VARS_KEY in self.request.context else None
        return RunnerOutcome(status, result, saved)

    # --- after a task ---------------------------------------------------------------------

    def _after(
        self,
        children: ChainExecutions,
        chain: ActionChain,
        task: ChainTask,
        run: TaskRun,
        context: ChainContext,
        result: dict[str, Any],
        statuses: Mapping[ExecutionStatus, ExecutionStatus],
    ) -> Next:
        """Publish a settled task's variables and pick the next task; stop the chain if the
        task waits, was canceled, or a pause or cancel of the chain was asked for."""
        if run.status in WAITING:
            logger.info(
                "Chain %s pauses: task %s is %s", self.request.execution_id, task.name, run.status
            )
            return Next(task, S.PAUSED, stop=S.PAUSED)
        status = statuses.get(run.status, S.FAILED)
        if status == S.CANCELED:
            return Next(None, S.CANCELED, stop=S.CANCELED)
        if run.ran:
            published = self._publish(context, task)
            if PUBLISHED_KEY in result:
                result[PUBLISHED_KEY].update(published)
        following = chain.next_task(task, succeeded=status == S.SUCCEEDED)
        if self._is_canceled():
            return Next(None, S.CANCELED, stop=S.CANCELED)
        own = children.workflow_status()
        if own == S.CANCELING:
            return Next(None, S.CANCELED, stop=S.CANCELED)
        if own in PAUSE_ASKED:
            return Next(following, status, stop=S.PAUSED)
        return Next(following, status)

    # --- resuming -------------------------------------------------------------------------

    def _result_so_far(self, display_published: bool) -> dict[str, Any]:
        recorded = self.request.result
        if isinstance(recorded, dict) and isinstance(recorded.get("tasks"), list):
            result: dict[str, Any] = {"tasks": list(recorded["tasks"])}
            if display_published:
                result[PUBLISHED_KEY] = dict(recorded.get(PUBLISHED_KEY) or {})
            return result
        return {"tasks": [], PUBLISHED_KEY: {}} if display_published else {"tasks": []}

    def _resume(
        self,
        children: ChainExecutions,
        chain: ActionChain,
        context: ChainContext,
        result: dict[str, Any],
    ) -> Next:
        """Restore a paused chain and settle the task it stopped on; return where it goes."""
        for entry in result["tasks"]:
            context.results[str(entry.get("name"))] = entry.get("result")
        saved = self.request.context.get(VARS_KEY)
        if isinstance(saved, Mapping):
            context.variables.update(saved)
        last = result["tasks"][-1]
        try:
            task = chain.task(str(last.get("name")))
        except ValidationError as error:
            raise ChainError(f"Failed to resume the chain. {error}") from None
        execution_id = last.get("execution_id")
        state = S(last.get("state", S.FAILED.value))
        logger.info("Chain %s resumes after task %s", self.request.execution_id, task.name)
        if state not in WAITING or not execution_id:
            run = TaskRun(state, last, ran=False)
            return self._after(children, chain, task, run, context, result, _RESUMED_STATUS)
        if state == S.PAUSED:
            children.resume(execution_id)
        status, child_result = self._wait(children, execution_id)
        created = _parse_time(last.get("created_at"))
        entry = _entry(task, execution_id, status, child_result, created)
        result["tasks"][-1] = entry
        context.record(task, _with_result_alias(child_result))
        # Its ``publish`` is rendered only if it succeeded: StackStorm renders none for a task
        # settled on resume, and a timed-out inquiry has no response to publish.
        run = TaskRun(status, entry, ran=status == S.SUCCEEDED)
        return self._after(children, chain, task, run, context, result, _RESUMED_STATUS)

    # --- one task -------------------------------------------------------------------------

    def _run_task(
        self, children: ChainExecutions, task: ChainTask, context: ChainContext
    ) -> TaskRun:
        created = datetime.now(UTC)
        try:
            parameters = context.task_parameters(task)
        except RenderError as error:
            raise ChainError(
                f'Failed to run task "{task.name}". Parameter rendering failed. {error}'
            ) from None
        try:
            execution_id = children.request(
                task.ref, parameters, {"chain": task.context()}, **self._task_notify(task)
            )
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
        status, child_result = self._wait(children, execution_id)
        context.record(task, child_result)
        entry = _entry(task, execution_id, status, child_result, created)
        return TaskRun(status, entry, ran=status not in WAITING)

    def _task_notify(self, task: ChainTask) -> dict[str, Any]:
        """The notify keywords of a task's child request."""
        skipped = self.request.runner_parameters.get("skip_notify") or []
        if task.name in skipped:
            return {"skip_notify": True}
        return {"notify": task.notify or self.request.notify}

    def _wait(self, children: ChainExecutions, execution_id: str) -> tuple[ExecutionStatus, Any]:
        """Wait until the child settles; a cancel of the chain meanwhile stops it."""
        with self._lock:
            self._current = execution_id
            canceled = self._canceled
        if canceled:
            children.cancel(execution_id)
        try:
            return children.wait_settled(execution_id)
        finally:
            with self._lock:
                self._current = None

    # --- rendering ------------------------------------------------------------------------

    def _context(self) -> ChainContext:
        request = self.request
        inherited = {key: value for key, value in request.context.items() if key != VARS_KEY}
        parent = {**inherited, "execution_id": request.execution_id}
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


# On resume a task that failed, timed out or was abandoned fails the chain (StackStorm's rule).
_RESUMED_STATUS = {S.SUCCEEDED: S.SUCCEEDED, S.CANCELED: S.CANCELED} | dict.fromkeys(
    FAILED, S.FAILED
)


def _with_result_alias(result: Any) -> Any:
    """A resumed task's result, also under ``result`` as StackStorm's resumed chains see it."""
    if isinstance(result, dict) and "result" not in result:
        return {**result, "result": result}
    return result


def _parse_time(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return datetime.now(UTC)


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
