"""Observing a dispatched alert in the engine: what its trigger instance, rule enforcements and
executions say now, read over the engine's API with no transaction open.

A CAB's enforcement (rule ``poundcake_cabs.<cab>``) names the workflow; its steps come from the
workflow's result (``steps``) and, while it runs, from its children. Other rules' executions are
steps of their own (``step_order`` 0). :mod:`poundcake.remediation.tracking.service` records
what :func:`observe` found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from poundcake.engine.public import (
    CANCELABLE_STATUSES,
    COMPLETED_STATUSES,
    FAILED_STATUSES,
    ExecutionStatus,
)
from poundcake.remediation.cabs.pack import PACK as CAB_PACK
from poundcake.remediation.engine_api import (
    EVALUATED_INSTANCE_STATUSES,
    EngineApi,
    EngineNotFoundError,
)

SUCCEEDED = ExecutionStatus.SUCCEEDED.value
NOT_STARTED = frozenset(
    {ExecutionStatus.REQUESTED, ExecutionStatus.SCHEDULED, ExecutionStatus.DELAYED}
)

Kind = Literal["unmatched", "failed", "tracked"]


@dataclass(frozen=True)
class StepRecord:
    """One execution started for an alert, as the engine reports it."""

    execution_id: str | None
    step_order: int = 0
    name: str | None = None
    action_ref: str | None = None
    status: str | None = None
    expected_result: Any = None
    result_matched: bool | None = None
    request_id: str | None = None
    cab_name: str | None = None
    # Why the step's result did not match (the runner's ``mismatches``), for the reason.
    detail: str | None = None

    def describe(self) -> str:
        """``step 2 "restart" (core.local)`` for a CAB step, the action for other executions."""
        if self.cab_name is None:
            return f"execution {self.execution_id} of {self.action_ref or 'an action'}"
        label = f'step {self.step_order} "{self.name}"' if self.name else f"step {self.step_order}"
        return f"{label} ({self.action_ref})" if self.action_ref else label


@dataclass(frozen=True)
class Observation:
    """What the engine says about one dispatched alert at one moment."""

    kind: Kind
    reason: str | None = None
    cab_name: str | None = None
    workflow_execution_id: str | None = None
    workflow_status: str | None = None
    steps: tuple[StepRecord, ...] = ()
    finished: bool = True
    succeeded: bool = False
    started: bool = False
    # The CAB's run failed only because an action runner abandoned its work (crash-safe
    # retries may resume it).
    abandoned: bool = False

    @property
    def cancelable(self) -> bool:
        """Tell whether the CAB workflow still runs and may be canceled."""
        return self.workflow_status in CANCELABLE_STATUSES


@dataclass(frozen=True)
class FollowedAlert:
    """The columns of a followed alert that the engine is asked about."""

    id: str
    trigger_instance_id: str
    workflow_execution_id: str | None
    request_id: str


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _order(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return default


def _context(document: Mapping[str, Any]) -> Mapping[str, Any]:
    context = document.get("context")
    return context if isinstance(context, Mapping) else {}


def _action_ref(document: Mapping[str, Any]) -> str | None:
    action = document.get("action")
    return _text(action.get("ref")) if isinstance(action, Mapping) else None


def result_steps(workflow: Mapping[str, Any], cab_name: str) -> list[StepRecord]:
    """The steps a CAB workflow reports in its result (``result.steps``); a step that never
    started has no ``execution_id``."""
    result = workflow.get("result")
    steps = result.get("steps") if isinstance(result, Mapping) else None
    if not isinstance(steps, list):
        return []
    request_id = _text(_context(workflow).get("request_id"))
    records = []
    for index, step in enumerate(steps, start=1):
        if not isinstance(step, Mapping):
            continue
        matched = step.get("result_matched")
        mismatches = step.get("mismatches")
        detail = None
        if isinstance(mismatches, list) and mismatches:
            detail = "; ".join(str(item) for item in mismatches[:3])
        records.append(
            StepRecord(
                execution_id=_text(step.get("execution_id")),
                step_order=_order(step.get("step_order"), index),
                name=_text(step.get("name")),
                action_ref=_text(step.get("action_ref")),
                status=_text(step.get("status")),
                expected_result=step.get("expected_result"),
                result_matched=matched if isinstance(matched, bool) else None,
                request_id=request_id,
                cab_name=cab_name,
                detail=detail,
            )
        )
    return records


def child_steps(children: Iterable[Mapping[str, Any]], cab_name: str) -> list[StepRecord]:
    """The steps of a CAB workflow as its child executions show them (while it runs)."""
    records = []
    for index, child in enumerate(children, start=1):
        context = _context(child)
        records.append(
            StepRecord(
                execution_id=str(child["id"]),
                step_order=_order(context.get("step_order"), index),
                name=_text(context.get("step")) or _text(context.get("cab_step")),
                action_ref=_action_ref(child),
                status=_text(child.get("status")),
                request_id=_text(context.get("request_id")),
                cab_name=cab_name,
            )
        )
    return records


def _merge(primary: list[StepRecord], secondary: list[StepRecord]) -> list[StepRecord]:
    """Steps with an execution: ``primary``'s values, completed by ``secondary``'s."""
    merged = {step.execution_id: step for step in secondary if step.execution_id}
    for step in primary:
        if step.execution_id is None:
            continue
        other = merged.get(step.execution_id)
        if other is None:
            merged[step.execution_id] = step
            continue
        merged[step.execution_id] = replace(
            step,
            **{
                name: getattr(other, name)
                for name in ("name", "action_ref", "status", "expected_result", "result_matched")
                if getattr(step, name) is None
            },
        )
    return sorted(merged.values(), key=lambda step: (step.step_order, step.execution_id or ""))


def _step_failure(steps: Iterable[StepRecord]) -> str | None:
    """Name the first step that failed or did not match, else the first one canceled."""
    ordered = sorted(steps, key=lambda step: step.step_order)
    for step in ordered:
        failure = None
        if step.status in FAILED_STATUSES:
            failure = f"{step.describe()} {step.status}"
        elif step.result_matched is False:
            failure = f"{step.describe()} returned an unexpected result"
        if failure:
            return f"{failure}: {step.detail}" if step.detail else failure
    for step in ordered:
        if step.status == "canceled":
            return f"{step.describe()} was canceled"
    return None


ABANDONED = ExecutionStatus.ABANDONED.value
# Step statuses an abandoned run may leave without anything having gone wrong in the step: not
# run yet, still running (a resumed run takes it over), done and matched, or abandoned itself.
_RESUMABLE_STEP_STATUSES = frozenset(
    {SUCCEEDED, ABANDONED, "skipped", "requested", "scheduled", "delayed", "running"}
)


def abandoned_only(workflow_status: str | None, steps: Iterable[StepRecord]) -> bool:
    """Tell whether a CAB run failed only because an action runner abandoned its work: the
    workflow or a step ``abandoned``, and no step failed or returned an unexpected result."""
    steps = list(steps)
    if workflow_status not in (ABANDONED, ExecutionStatus.FAILED.value):
        return False
    if workflow_status != ABANDONED and all(step.status != ABANDONED for step in steps):
        return False
    for step in steps:
        if step.status not in _RESUMABLE_STEP_STATUSES:
            return False
        if step.status == SUCCEEDED and step.result_matched is False:
            return False
    return True


def _observe_cab(
    engine_api: EngineApi,
    enforcement: Mapping[str, Any],
    cab_name: str,
    current: str | None = None,
) -> tuple[str | None, str | None, list[StepRecord], str | None]:
    """The CAB workflow: its id, status, steps, and why it failed (if it did). ``current`` is the
    alert's workflow when it differs from the enforcement's: a run resumed after an abandoned
    one."""
    workflow_id = current or _text(enforcement.get("execution_id"))
    if workflow_id is None:
        why = _text(enforcement.get("failure_reason")) or "its rule enforcement failed"
        return None, None, [], f'CAB "{cab_name}" did not start: {why}'
    workflow = engine_api.get_execution(workflow_id)
    status = _text(workflow.get("status"))
    from_result = result_steps(workflow, cab_name)
    if status in COMPLETED_STATUSES and from_result:
        steps = _merge(from_result, [])
    else:
        steps = _merge(child_steps(engine_api.children(workflow_id), cab_name), from_result)
    failure = None
    if status in COMPLETED_STATUSES and status != SUCCEEDED:
        result = workflow.get("result")
        error = _text(result.get("error")) if isinstance(result, Mapping) else None
        why = (
            _step_failure(from_result or steps)
            or error
            or f"workflow execution {workflow_id} {status}"
        )
        failure = f'CAB "{cab_name}": {why}'
    return workflow_id, status, steps, failure


def _observe_rule(engine_api: EngineApi, enforcement: Mapping[str, Any]) -> StepRecord | str:
    """A user's rule on poundcake.alert: its execution as a step, or why it did not start."""
    rule = enforcement.get("rule")
    rule_ref = _text(rule.get("ref")) if isinstance(rule, Mapping) else None
    execution_id = _text(enforcement.get("execution_id"))
    if execution_id is None:
        failure = _text(enforcement.get("failure_reason")) or "its rule enforcement failed"
        return f'rule "{rule_ref}" did not start: {failure}'
    execution = engine_api.get_execution(execution_id)
    status = _text(execution.get("status"))
    return StepRecord(
        execution_id=execution_id,
        action_ref=_action_ref(execution),
        status=status,
        result_matched=(status == SUCCEEDED) if status in COMPLETED_STATUSES else None,
        request_id=_text(_context(execution).get("request_id")),
    )


def _cab_name(enforcement: Mapping[str, Any]) -> str | None:
    rule = enforcement.get("rule")
    ref = _text(rule.get("ref")) if isinstance(rule, Mapping) else None
    ref = ref or _text(enforcement.get("rule_ref"))
    if ref is None or not ref.startswith(f"{CAB_PACK}."):
        return None
    return ref.split(".", 1)[1]


def observe(engine_api: EngineApi, alert: FollowedAlert) -> Observation | None:
    """Ask the engine where an alert's remediation is; None while the rules engine is at it."""
    instance_id = alert.trigger_instance_id
    try:
        instance = engine_api.get_trigger_instance(instance_id)
    except EngineNotFoundError:
        return Observation("failed", f"trigger instance {instance_id} no longer exists")
    status = instance.get("status")
    if status not in EVALUATED_INSTANCE_STATUSES:
        return None
    # Enforcements are read after the status: the rules engine commits them together.
    enforcements = engine_api.rule_enforcements(instance_id)
    if not enforcements:
        if status == "processed":
            return Observation("unmatched", "no CAB or rule matched the alert")
        return Observation(
            "failed", f"the engine could not evaluate trigger instance {instance_id}"
        )
    try:
        return _observe_enforcements(engine_api, enforcements, alert.workflow_execution_id)
    except EngineNotFoundError as error:
        return Observation("failed", f"an execution of the remediation no longer exists ({error})")


def _observe_enforcements(
    engine_api: EngineApi, enforcements: list[dict[str, Any]], current: str | None = None
) -> Observation:
    cab_name: str | None = None
    abandoned = False
    workflow_id: str | None = None
    workflow_status: str | None = None
    steps: list[StepRecord] = []
    failures: list[str] = []
    statuses: list[str | None] = []
    for enforcement in enforcements:
        name = _cab_name(enforcement)
        if name is not None and cab_name is None:
            # The first CAB is the episode's remediation; any other enforcement is followed
            # as an execution of its own.
            cab_name = name
            workflow_id, workflow_status, cab_steps, failure = _observe_cab(
                engine_api, enforcement, name, current
            )
            steps.extend(cab_steps)
            abandoned = failure is not None and abandoned_only(workflow_status, cab_steps)
            if workflow_id is not None:
                statuses.append(workflow_status)
        else:
            observed = _observe_rule(engine_api, enforcement)
            if isinstance(observed, str):
                failures.append(observed)
                continue
            steps.append(observed)
            statuses.append(observed.status)
            failure = None
            if observed.status in COMPLETED_STATUSES and observed.status != SUCCEEDED:
                failure = f"{observed.describe()} {observed.status}"
        if failure:
            failures.append(failure)
    finished = all(status in COMPLETED_STATUSES for status in statuses)
    succeeded = finished and not failures
    reason: str | None = "; ".join(failures) or None
    if succeeded:
        reason = f'CAB "{cab_name}" succeeded' if cab_name else "every rule's execution succeeded"
    return Observation(
        "tracked",
        reason=reason,
        cab_name=cab_name,
        workflow_execution_id=workflow_id,
        workflow_status=workflow_status,
        steps=tuple(steps),
        finished=finished,
        succeeded=succeeded,
        started=any(
            status is not None and status not in NOT_STARTED
            for status in [*statuses, *(step.status for step in steps)]
        ),
        abandoned=abandoned and len(failures) == 1,
    )
