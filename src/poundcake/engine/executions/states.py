"""Execution statuses with StackStorm's names, and the one table of legal transitions."""

from __future__ import annotations

from enum import StrEnum

from poundcake.exceptions import ValidationError


class ExecutionStatus(StrEnum):
    """An execution's status as the API and ``st2`` CLI show it."""

    REQUESTED = "requested"
    SCHEDULED = "scheduled"
    DELAYED = "delayed"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ABANDONED = "abandoned"
    CANCELING = "canceling"
    CANCELED = "canceled"
    PENDING = "pending"
    PAUSING = "pausing"
    PAUSED = "paused"
    RESUMING = "resuming"


S = ExecutionStatus

COMPLETED: frozenset[ExecutionStatus] = frozenset(
    {S.SUCCEEDED, S.FAILED, S.TIMEOUT, S.ABANDONED, S.CANCELED}
)
FAILED: frozenset[ExecutionStatus] = frozenset({S.FAILED, S.TIMEOUT, S.ABANDONED})
CANCELABLE: frozenset[ExecutionStatus] = frozenset(
    {S.REQUESTED, S.SCHEDULED, S.DELAYED, S.RUNNING, S.PAUSING, S.PAUSED, S.RESUMING, S.PENDING}
)

TRANSITIONS: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    S.REQUESTED: frozenset({S.SCHEDULED, S.DELAYED, S.RUNNING, S.FAILED, S.CANCELED}),
    S.DELAYED: frozenset({S.REQUESTED, S.SCHEDULED, S.FAILED, S.CANCELED}),
    S.SCHEDULED: frozenset({S.RUNNING, S.FAILED, S.CANCELED, S.ABANDONED, S.DELAYED}),
    S.RUNNING: frozenset(
        {
            S.SUCCEEDED,
            S.FAILED,
            S.TIMEOUT,
            S.ABANDONED,
            S.CANCELING,
            S.CANCELED,
            S.PAUSING,
            # A workflow that stopped at a task waiting for a response (an inquiry).
            S.PAUSED,
            # An inquiry waiting for its response.
            S.PENDING,
            # A workflow released by a runner that shut down, for another runner to resume.
            S.SCHEDULED,
            # An Orquesta workflow whose last active task paused.
            S.PAUSED,
        }
    ),
    S.CANCELING: frozenset({S.CANCELED, S.SUCCEEDED, S.FAILED, S.TIMEOUT, S.ABANDONED}),
    # A pausing workflow's running task finishes first; the workflow may end meanwhile, and a
    # resume asked for before it stopped turns it to resuming. An Orquesta workflow whose pause
    # is overtaken by a resume goes back to running.
    S.PAUSING: frozenset(
        {
            S.PAUSED,
            S.RUNNING,
            S.RESUMING,
            S.SUCCEEDED,
            S.FAILED,
            S.TIMEOUT,
            S.CANCELING,
            S.CANCELED,
            S.ABANDONED,
        }
    ),
    # An Orquesta workflow paused with nothing left to run completes when resumed.
    S.PAUSED: frozenset({S.RESUMING, S.RUNNING, S.SUCCEEDED, S.FAILED, S.CANCELING, S.CANCELED}),
    S.RESUMING: frozenset(
        {
            S.RUNNING,
            S.PAUSING,
            S.PAUSED,
            S.SUCCEEDED,
            S.FAILED,
            S.TIMEOUT,
            S.CANCELING,
            S.CANCELED,
            S.ABANDONED,
        }
    ),
    # A response succeeds an inquiry; its TTL ends it in timeout.
    S.PENDING: frozenset({S.SUCCEEDED, S.TIMEOUT, S.RUNNING, S.CANCELING, S.CANCELED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.TIMEOUT: frozenset(),
    S.ABANDONED: frozenset(),
    S.CANCELED: frozenset(),
}
# Statuses a pause leaves an execution in; a resume request applies to these.
PAUSE_STATES: frozenset[ExecutionStatus] = frozenset({S.PAUSING, S.PAUSED})


class IllegalTransitionError(ValidationError):
    """A status change the lifecycle does not allow."""


def check_transition(current: ExecutionStatus, new: ExecutionStatus) -> None:
    """Raise :class:`IllegalTransitionError` unless ``current -> new`` is allowed."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransitionError(f"execution cannot go from {current} to {new}")


def is_completed(status: str) -> bool:
    """Tell whether ``status`` is final."""
    return status in COMPLETED
