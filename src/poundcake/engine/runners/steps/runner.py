"""The ``steps`` runner: run actions in order, check each result, stop at the first miss.

The action's ``entry_point`` names a steps file (see :mod:`.definition`). Each step runs as a
child execution through :attr:`RunnerServices.children`, one after the other:

- Its parameters are rendered first, against the workflow's parameters, ``st2kv`` and the
  results of earlier steps by step name (``{{ free_space.stdout }}``). For an action whose
  runner is ``local-shell-cmd`` or ``remote-shell-cmd`` the ``cmd`` parameter is rendered with
  every expression shell-quoted, so values from an alert stay data. The rendered parameters are
  final: the engine never renders them again. A step with ``timeout_seconds`` whose action
  takes a ``timeout`` parameter (and does not set one) passes it on.
- The child's context holds ``parent``, the workflow's ``request_id`` and ``alert_id`` (when it
  has them), ``step_order`` (from 1) and ``step`` (the step's name).
- When the child finishes its status and result are checked against ``expected_result`` (see
  :mod:`.expected`). With ``timeout_seconds``, a child still unfinished that many seconds (plus
  :data:`TIMEOUT_GRACE_SECONDS`) after it was requested is canceled and the step reported
  ``timeout``, not matched.
- A step whose parameters cannot be rendered, or whose request is refused, fails without a child.
- A step that does not match stops the run when ``stop_on_first_failure`` (the default); the
  steps after it are reported ``skipped``.

A workflow run again after its action runner released it (shut down while it waited) resumes:
a step whose child was already requested (the children's ``step_order`` and ``step`` in their
context) is not requested again, its child is waited for (or its result taken), so no step runs
twice.

A workflow whose context names ``resume_from`` (an earlier run of the same steps that its
action runner abandoned, as PoundCake's crash-safe retries request it) takes over that run's
children the same way: a step whose child there did not end ``abandoned`` is waited for (or its
result taken), never requested again; an abandoned one runs again. The earlier run may itself
name a ``resume_from``, and so on (at most :data:`MAX_RESUMED_RUNS`).

Canceling the workflow is graceful, as StackStorm's orquesta does: the running step finishes,
no other step starts, and the steps not started are reported ``canceled``. A step's execution
that ends ``canceled`` (other than by its timeout) cancels the workflow too. Every action a
step names is looked up before the first step runs; a missing one fails the workflow with
``error`` and nothing runs.

The result::

    {"steps": [{"name", "step_order", "action_ref", "execution_id", "status",
                "expected_result", "result_matched", "mismatches", "result"}, ...],
     "stop_on_first_failure": bool, "stopped_at": <the step that stopped the run> or null,
     "canceled": bool}

``result`` is the step's execution result, cut to :data:`STEP_RESULT_MAX_BYTES`;
``result_matched`` is null for a step that did not run. The workflow succeeds when every step
ran and matched, ends ``canceled`` when it was canceled, and fails otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from poundcake.engine.executions.service import shape_result
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.rendering import RenderError, render_shell_command, render_value
from poundcake.engine.runners.base import (
    ChildExecutions,
    OutputSink,
    Runner,
    RunnerOutcome,
    RunnerRequest,
    RunnerServices,
)
from poundcake.engine.runners.chain.context import datastore_variables
from poundcake.engine.runners.steps.definition import Step, StepsWorkflow, load_steps
from poundcake.engine.runners.steps.expected import check
from poundcake.exceptions import NotFoundError, PoundCakeError, ValidationError

logger = logging.getLogger(__name__)

S = ExecutionStatus
SKIPPED = "skipped"
SHELL_COMMAND_RUNNERS = frozenset({"local-shell-cmd", "remote-shell-cmd"})
STEP_RESULT_MAX_BYTES = 16 * 1024
TIMEOUT_GRACE_SECONDS = 3.0
COPIED_CONTEXT_KEYS = ("request_id", "alert_id")
RESUME_FROM = "resume_from"
MAX_RESUMED_RUNS = 20


@runtime_checkable
class StepExecutions(ChildExecutions, Protocol):
    """Child executions as the steps runner needs them: final parameters and action lookups."""

    def request(
        self,
        action_ref: str,
        parameters: Mapping[str, Any],
        context: Mapping[str, Any],
        *,
        rendered: bool = False,
        notify: Mapping[str, Any] | None = None,
        skip_notify: bool = False,
    ) -> str: ...

    def action(self, action_ref: str) -> tuple[str, dict[str, Any]]: ...

    def workflow_status(self) -> ExecutionStatus: ...


@dataclass(frozen=True)
class StepAction:
    """What the runner needs to know of a step's action before requesting it."""

    runner_type: str
    parameter_schema: Mapping[str, Any]

    def takes_timeout(self) -> bool:
        """Whether a ``timeout`` parameter may be passed to the action."""
        spec = self.parameter_schema.get("timeout")
        return isinstance(spec, Mapping) and not spec.get("immutable")


@dataclass(frozen=True)
class StepRun:
    """One step that was tried: its entry in ``result.steps`` and its full result."""

    entry: dict[str, Any]
    result: Any
    matched: bool
    canceled: bool = False


class StepsRunner(Runner):
    """Runs a steps workflow, one child execution per step."""

    runner_type = "steps"
    timeout_grace_seconds = TIMEOUT_GRACE_SECONDS

    def __init__(
        self, request: RunnerRequest, output: OutputSink, services: RunnerServices | None = None
    ) -> None:
        super().__init__(request, output, services)
        self._workflow: StepsWorkflow | None = None
        self._children: StepExecutions | None = None
        self._lock = threading.Lock()
        self._canceled = False

    def pre_run(self) -> None:
        children = self.services.children
        if not isinstance(children, StepExecutions):
            raise ValidationError(
                "the steps runner needs child executions; run it in an action runner"
            )
        if self.request.entry_point_path is None:
            raise ValidationError(
                f'Action "{self.request.action_ref}" has no entry point; a steps action names '
                "its steps file in entry_point."
            )
        workflow = load_steps(self.request.entry_point_path)
        for index, step in enumerate(workflow.steps):
            if step.name in self.request.parameter_schema:
                raise ValidationError(
                    f'steps[{index}].name: "{step.name}" is also a parameter of action '
                    f'"{self.request.action_ref}"; rename the step'
                )
        self._children, self._workflow = children, workflow

    def run(self) -> RunnerOutcome:
        workflow, children = self._workflow, self._children
        assert workflow is not None and children is not None, "pre_run() was not called"
        try:
            actions = {step.ref: _action(children, step) for step in workflow.steps}
        except NotFoundError as error:
            skipped = [_not_run(step, order, SKIPPED) for order, step in _numbered(workflow)]
            result = _result(workflow, skipped, stopped_at=None, canceled=False)
            return RunnerOutcome(S.FAILED, {**result, "error": str(error)})
        names = {**datastore_variables(self.services.datastore), **self.request.action_parameters}
        started = {**_resumed(children, self.request.context), **_started(children)}
        entries: list[dict[str, Any]] = []
        stopped_at: str | None = None
        canceled = False
        all_matched = True
        for order, step in _numbered(workflow):
            canceled = canceled or (stopped_at is None and self._cancel_asked(children))
            if canceled or stopped_at is not None:
                entries.append(_not_run(step, order, S.CANCELED.value if canceled else SKIPPED))
                all_matched = False
                continue
            run = self._run_step(
                children, step, order, actions[step.ref], names, started.get((order, step.name))
            )
            entries.append(run.entry)
            names[step.name] = run.result
            all_matched = all_matched and run.matched
            if run.canceled:
                canceled = True
            elif not run.matched and workflow.stop_on_first_failure:
                stopped_at = step.name
        canceled = canceled or self._cancel_asked(children)
        status = S.CANCELED if canceled else S.SUCCEEDED if all_matched else S.FAILED
        return RunnerOutcome(status, _result(workflow, entries, stopped_at, canceled))

    def cancel(self) -> None:
        """Start no more steps; the running one finishes (its wait keeps it running)."""
        with self._lock:
            self._canceled = True

    def _is_canceled(self) -> bool:
        with self._lock:
            return self._canceled

    def _cancel_asked(self, children: StepExecutions) -> bool:
        """Whether the workflow was asked to cancel: told by the action runner's heartbeat, or
        (read now, before a step starts and at the end) asked for since its last beat, so a step
        that ends between two beats never lets the next one start."""
        if self._is_canceled():
            return True
        if children.workflow_status() == S.CANCELING:
            self.cancel()
            return True
        return False

    # --- one step -------------------------------------------------------------------------

    def _run_step(
        self,
        children: StepExecutions,
        step: Step,
        order: int,
        action: StepAction,
        names: Mapping[str, Any],
        existing: str | None = None,
    ) -> StepRun:
        if existing is not None:
            execution_id = existing
        else:
            try:
                parameters = _parameters(step, action, names)
            except RenderError as error:
                return _refused(step, order, f'Step "{step.name}": {error}')
            try:
                execution_id = children.request(
                    step.ref, parameters, self._child_context(step, order), rendered=True
                )
            except PoundCakeError as error:
                return _refused(
                    step,
                    order,
                    f'Step "{step.name}": running action "{step.ref}" was refused. {error}',
                )
        logger.info(
            "Steps %s: step %d (%s) %s as %s",
            self.request.execution_id,
            order,
            step.name,
            "resumes" if existing is not None else "runs",
            execution_id,
        )
        status, result, timed_out = self._wait(children, step, execution_id)
        if timed_out:
            shown = S.TIMEOUT.value
            mismatches = [
                f"timeout_seconds: not finished within {step.timeout_seconds} seconds; canceled"
            ]
        else:
            shown = status.value
            mismatches = check(step.expected_result, shown, result)
        matched = not mismatches
        logger.info(
            "Steps %s: step %d (%s) ended %s, %s",
            self.request.execution_id,
            order,
            step.name,
            shown,
            "matched" if matched else "not matched",
        )
        entry = _entry(step, order, execution_id, shown, result, matched, mismatches)
        canceled = status == S.CANCELED and not timed_out
        return StepRun(entry, result, matched, canceled)

    def _wait(
        self, children: StepExecutions, step: Step, execution_id: str
    ) -> tuple[ExecutionStatus, Any, bool]:
        """Wait for the child; return its status, its result and whether its timeout ended it."""
        if step.timeout_seconds is None:
            return *children.wait(execution_id), False
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            logger.warning(
                "Steps %s: step %s exceeded timeout_seconds=%d; canceling %s",
                self.request.execution_id,
                step.name,
                step.timeout_seconds,
                execution_id,
            )
            children.cancel(execution_id)

        timer = threading.Timer(step.timeout_seconds + self.timeout_grace_seconds, expire)
        timer.daemon = True
        timer.start()
        try:
            status, result = children.wait(execution_id)
        finally:
            timer.cancel()
        return status, result, expired.is_set() and status == S.CANCELED

    def _child_context(self, step: Step, order: int) -> dict[str, Any]:
        context = self.request.context
        copied = {key: context[key] for key in COPIED_CONTEXT_KEYS if key in context}
        return {**copied, "step_order": order, "step": step.name}


def _started(children: StepExecutions) -> dict[tuple[int, str], str]:
    """The children an earlier run of this workflow requested, by (step order, step name)."""
    existing = getattr(children, "existing", None)
    if not callable(existing):
        return {}
    started: dict[tuple[int, str], str] = {}
    for execution_id, context in existing():
        order, name = context.get("step_order"), context.get("step")
        if isinstance(order, int) and isinstance(name, str):
            started.setdefault((order, name), str(execution_id))
    return started


def _resumed(children: StepExecutions, context: Mapping[str, Any]) -> dict[tuple[int, str], str]:
    """The children earlier runs this one resumes left, by (step order, step name), newest run
    first; abandoned ones are left out, so their steps run again."""
    earlier_run = getattr(children, "earlier_run", None)
    current = context.get(RESUME_FROM)
    if not callable(earlier_run) or not isinstance(current, str):
        return {}
    taken: dict[tuple[int, str], str] = {}
    seen: set[str] = set()
    while isinstance(current, str) and current not in seen and len(seen) < MAX_RESUMED_RUNS:
        seen.add(current)
        steps, earlier_context = earlier_run(current)
        for execution_id, step_context, status in steps:
            order, name = step_context.get("step_order"), step_context.get("step")
            if status == S.ABANDONED.value or not isinstance(order, int):
                continue
            if isinstance(name, str):
                taken.setdefault((order, name), str(execution_id))
        current = earlier_context.get(RESUME_FROM)
    return taken


def _action(children: StepExecutions, step: Step) -> StepAction:
    try:
        runner_type, schema = children.action(step.ref)
    except NotFoundError as error:
        raise NotFoundError(f'Step "{step.name}": {error}') from None
    return StepAction(runner_type, schema)


def _parameters(step: Step, action: StepAction, names: Mapping[str, Any]) -> dict[str, Any]:
    """Render a step's parameters; raises RenderError naming the parameter."""
    rendered: dict[str, Any] = {}
    for name, value in step.parameters.items():
        shell = name == "cmd" and action.runner_type in SHELL_COMMAND_RUNNERS
        try:
            rendered[name] = (
                render_shell_command(value, names) if shell else render_value(value, names)
            )
        except RenderError as error:
            raise RenderError(f'rendering parameter "{name}" failed: {error}') from None
    if step.timeout_seconds is not None and "timeout" not in rendered and action.takes_timeout():
        rendered["timeout"] = step.timeout_seconds
    return rendered


def _numbered(workflow: StepsWorkflow) -> list[tuple[int, Step]]:
    return list(enumerate(workflow.steps, start=1))


def _entry(
    step: Step,
    order: int,
    execution_id: str | None,
    status: str,
    result: Any,
    matched: bool | None,
    mismatches: list[str],
) -> dict[str, Any]:
    """One step as ``result.steps`` lists it."""
    shown = shape_result(result, STEP_RESULT_MAX_BYTES)[0] if result is not None else None
    return {
        "name": step.name,
        "step_order": order,
        "action_ref": step.ref,
        "execution_id": execution_id,
        "status": status,
        "expected_result": step.expected_result_document,
        "result_matched": matched,
        "mismatches": mismatches,
        "result": shown,
    }


def _refused(step: Step, order: int, error: str) -> StepRun:
    """A step that failed before a child ran."""
    logger.info("%s", error)
    result = {"error": error}
    entry = _entry(step, order, None, S.FAILED.value, result, False, [error])
    return StepRun(entry, result, matched=False)


def _not_run(step: Step, order: int, status: str) -> dict[str, Any]:
    return _entry(step, order, None, status, None, None, [])


def _result(
    workflow: StepsWorkflow,
    entries: list[dict[str, Any]],
    stopped_at: str | None,
    canceled: bool,
) -> dict[str, Any]:
    return {
        "steps": entries,
        "stop_on_first_failure": workflow.stop_on_first_failure,
        "stopped_at": stopped_at,
        "canceled": canceled,
    }
