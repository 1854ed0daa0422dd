"""The status machines of Orquesta workflows and tasks: statuses, events, legal transitions.

A task's status moves on events from its action executions (``action_<status>``, for a
with-items task qualified by what its other items are doing), from engine commands
(``task_<command>_requested``) and from requests on the workflow (``workflow_<status>``). A
workflow's status moves on events from its tasks (``task_<status>``, qualified by whether other
tasks are active and whether the workflow is complete, paused or canceled) and on requests
(``workflow_<status>``, qualified by whether tasks are active). An event a table does not list
for the current status changes nothing. These are Orquesta's tables, StackStorm 3.9's behaviour;
they are written out here because the statuses a user sees depend on every entry.
"""

from __future__ import annotations

from collections.abc import Iterable

UNSET = "null"
REQUESTED = "requested"
SCHEDULED = "scheduled"
DELAYED = "delayed"
RUNNING = "running"
PENDING = "pending"
PAUSING = "pausing"
PAUSED = "paused"
RESUMING = "resuming"
SUCCEEDED = "succeeded"
FAILED = "failed"
EXPIRED = "timeout"
ABANDONED = "abandoned"
RETRYING = "retrying"
CANCELING = "canceling"
CANCELED = "canceled"

STARTING = frozenset({REQUESTED, SCHEDULED, DELAYED, RUNNING, PENDING})
RUNNING_STATUSES = frozenset({REQUESTED, SCHEDULED, DELAYED, RUNNING, RESUMING, RETRYING})
ACTIVE = frozenset({REQUESTED, SCHEDULED, DELAYED, RUNNING, RESUMING, PAUSING, CANCELING})
PAUSE_STATUSES = frozenset({PAUSING, PAUSED})
CANCEL_STATUSES = frozenset({CANCELING, CANCELED})
ABENDED = frozenset({FAILED, EXPIRED, ABANDONED})
COMPLETED = frozenset({SUCCEEDED, FAILED, EXPIRED, ABANDONED, CANCELED})

# Qualifiers of item events ("action_succeeded_task_dormant_items_incomplete").
_ITEM_OUTCOMES = ("paused", "canceled", "failed", "incomplete", "completed")


def _dormant_items(action: str, **outcome: str) -> dict[str, str]:
    """``action_<x>_task_dormant_items_<outcome>`` entries."""
    return {f"action_{action}_task_dormant_items_{name}": outcome[name] for name in outcome}


def _all_dormant(action: str, status: str) -> dict[str, str]:
    return _dormant_items(action, **dict.fromkeys(_ITEM_OUTCOMES, status))


def _abended_after_failure(action: str) -> dict[str, str]:
    return _dormant_items(
        action, paused=FAILED, canceled=CANCELED, failed=FAILED, incomplete=FAILED, completed=FAILED
    )


def _paused_like(action: str) -> dict[str, str]:
    return _dormant_items(
        action, paused=PAUSED, canceled=CANCELED, failed=FAILED, incomplete=PAUSED, completed=PAUSED
    )


def _from_new(statuses: Iterable[str]) -> dict[str, str]:
    return {f"action_{status}": status for status in statuses}


_AFTER_START = (PAUSING, PAUSED, CANCELING, CANCELED, FAILED, EXPIRED, ABANDONED)

TASK_MACHINE: dict[str, dict[str, str]] = {
    UNSET: {
        **_from_new((REQUESTED, SCHEDULED, DELAYED, RUNNING, PENDING)),
        "task_continue_requested": SUCCEEDED,
        "task_noop_requested": SUCCEEDED,
        "task_fail_requested": FAILED,
    },
    REQUESTED: _from_new((SCHEDULED, DELAYED, RUNNING, PENDING, *_AFTER_START)),
    SCHEDULED: _from_new((DELAYED, RUNNING, PENDING, *_AFTER_START)),
    DELAYED: _from_new((SCHEDULED, RUNNING, PENDING, *_AFTER_START)),
    RUNNING: {
        "action_running": RUNNING,
        "action_pending": PENDING,
        "action_pending_task_active_items_incomplete": PAUSING,
        **_paused_like("pending"),
        "action_pausing": PAUSING,
        "action_paused": PAUSED,
        "action_paused_task_active_items_incomplete": PAUSING,
        **_paused_like("paused"),
        "action_canceling": CANCELING,
        "action_canceled": CANCELED,
        "action_canceled_task_active_items_incomplete": CANCELING,
        **_all_dormant("canceled", CANCELED),
        "action_failed": FAILED,
        **_abended_after_failure("failed"),
        "action_timeout": FAILED,
        **_abended_after_failure("timeout"),
        "action_abandoned": FAILED,
        **_abended_after_failure("abandoned"),
        "action_succeeded": SUCCEEDED,
        "action_succeeded_task_active_items_incomplete": RUNNING,
        **_dormant_items(
            "succeeded",
            canceled=CANCELED,
            paused=PAUSED,
            failed=FAILED,
            incomplete=RUNNING,
            completed=SUCCEEDED,
        ),
        "workflow_pausing_task_active_items_incomplete": PAUSING,
        "workflow_pausing_task_dormant_items_incomplete": PAUSED,
        "workflow_paused_task_active_items_incomplete": PAUSING,
        "workflow_paused_task_dormant_items_incomplete": PAUSED,
        "workflow_canceling_task_active_items_incomplete": CANCELING,
        "workflow_canceling_task_dormant_items_incomplete": CANCELED,
        "workflow_canceled_task_active_items_incomplete": CANCELING,
        "workflow_canceled_task_dormant_items_incomplete": CANCELED,
    },
    PENDING: {
        "action_canceled": CANCELED,
        "action_failed": FAILED,
        "action_timeout": FAILED,
        "action_abandoned": FAILED,
        "action_succeeded": SUCCEEDED,
    },
    PAUSING: {
        **_paused_like("pending"),
        "action_paused": PAUSED,
        **_paused_like("paused"),
        "action_resuming": RESUMING,
        "action_canceling": CANCELING,
        "action_canceled": CANCELED,
        **_all_dormant("canceled", CANCELED),
        "action_failed": FAILED,
        **_abended_after_failure("failed"),
        "action_timeout": FAILED,
        **_abended_after_failure("timeout"),
        "action_abandoned": FAILED,
        **_abended_after_failure("abandoned"),
        **_dormant_items(
            "succeeded",
            paused=PAUSED,
            canceled=CANCELED,
            failed=FAILED,
            incomplete=PAUSED,
            completed=SUCCEEDED,
        ),
    },
    PAUSED: {
        "action_running": RUNNING,
        "action_resuming": RESUMING,
        "action_canceling": CANCELING,
        "action_canceled": CANCELED,
    },
    RESUMING: {
        "action_running": RUNNING,
        "action_canceling": CANCELING,
        "action_canceled": CANCELED,
    },
    RETRYING: {
        "action_running": RUNNING,
        "action_canceling": CANCELING,
        "action_canceled": CANCELED,
        "workflow_canceling": CANCELED,
        "workflow_canceled": CANCELED,
    },
    CANCELING: {
        **_all_dormant("pending", CANCELED),
        "action_paused": CANCELED,
        **_all_dormant("paused", CANCELED),
        "action_canceled": CANCELED,
        **_all_dormant("canceled", CANCELED),
        "action_failed": FAILED,
        **_all_dormant("failed", CANCELED),
        "action_timeout": FAILED,
        **_all_dormant("timeout", CANCELED),
        "action_abandoned": FAILED,
        **_all_dormant("abandoned", CANCELED),
        **_dormant_items(
            "succeeded",
            paused=CANCELED,
            canceled=CANCELED,
            failed=CANCELED,
            incomplete=CANCELED,
            completed=SUCCEEDED,
        ),
    },
    CANCELED: {},
    SUCCEEDED: {"task_retry_requested": RETRYING},
    FAILED: {"task_retry_requested": RETRYING},
}

# Item events carry what the task's other items are doing for these statuses only.
ITEM_QUALIFIED = frozenset(
    {RESUMING, PENDING, PAUSED, SUCCEEDED, FAILED, EXPIRED, ABANDONED, CANCELED}
)


def _requests(active: str, dormant: str, *statuses: str) -> dict[str, str]:
    """``workflow_<s>_workflow_active|dormant`` for each requested status."""
    found = {}
    for status in statuses:
        found[f"workflow_{status}_workflow_active"] = active
        found[f"workflow_{status}_workflow_dormant"] = dormant
    return found


def _task_done(kind: str, **qualified: str) -> dict[str, str]:
    """``task_<kind>_workflow_<active|dormant>_<outcome>`` entries: keys like active_paused."""
    return {f"task_{kind}_workflow_{key}": status for key, status in qualified.items()}


def _active_dormant(kind: str, active: str, dormant: str) -> dict[str, str]:
    return {f"task_{kind}_workflow_active": active, f"task_{kind}_workflow_dormant": dormant}


_PAUSE = _requests(PAUSING, PAUSED, PAUSING, PAUSED)
_CANCEL = _requests(CANCELING, CANCELED, CANCELING, CANCELED)
_NOT_STARTED = {
    "workflow_pausing_workflow_dormant": PAUSED,
    "workflow_paused_workflow_dormant": PAUSED,
    "workflow_canceling_workflow_dormant": CANCELED,
    "workflow_canceled_workflow_dormant": CANCELED,
    "workflow_failed": FAILED,
}


def _running_finish(kind: str) -> dict[str, str]:
    return _task_done(
        kind,
        active_incomplete=RUNNING,
        active_completed=RUNNING,
        active_paused=PAUSING,
        active_canceled=CANCELING,
        dormant_incomplete=RUNNING,
        dormant_completed=SUCCEEDED,
        dormant_paused=PAUSED,
        dormant_canceled=CANCELED,
    )


def _resuming_finish(kind: str) -> dict[str, str]:
    return _task_done(
        kind,
        active_incomplete=RUNNING,
        active_completed=RUNNING,
        dormant_incomplete=RUNNING,
        dormant_completed=SUCCEEDED,
        dormant_paused=PAUSED,
        dormant_canceled=CANCELED,
    )


WORKFLOW_MACHINE: dict[str, dict[str, str]] = {
    UNSET: {
        "workflow_requested": REQUESTED,
        "workflow_scheduled": SCHEDULED,
        "workflow_delayed": DELAYED,
        "workflow_running": RUNNING,
        "workflow_failed": FAILED,
    },
    REQUESTED: {
        "workflow_scheduled": SCHEDULED,
        "workflow_delayed": DELAYED,
        "workflow_running": RUNNING,
        **_NOT_STARTED,
    },
    SCHEDULED: {"workflow_delayed": DELAYED, "workflow_running": RUNNING, **_NOT_STARTED},
    DELAYED: {"workflow_scheduled": SCHEDULED, "workflow_running": RUNNING, **_NOT_STARTED},
    RUNNING: {
        **_PAUSE,
        **_CANCEL,
        "workflow_failed": FAILED,
        "workflow_succeeded": SUCCEEDED,
        **_active_dormant("pending", PAUSING, PAUSED),
        "task_pausing": RUNNING,
        **_active_dormant("paused", RUNNING, PAUSED),
        **_running_finish("succeeded"),
        **_active_dormant("failed", FAILED, FAILED),
        **_running_finish("remediated"),
        "task_canceling": CANCELING,
        **_active_dormant("canceled", CANCELING, CANCELED),
    },
    PAUSING: {
        **_PAUSE,
        **_CANCEL,
        "workflow_running": RUNNING,
        "workflow_resuming": RESUMING,
        "workflow_failed": FAILED,
        **_active_dormant("pending", PAUSING, PAUSED),
        **_active_dormant("paused", PAUSING, PAUSED),
        **_task_done(
            "succeeded",
            active_incomplete=PAUSING,
            active_completed=PAUSING,
            active_paused=PAUSING,
            active_canceled=PAUSING,
            dormant_incomplete=PAUSED,
            dormant_completed=PAUSED,
            dormant_paused=PAUSED,
            dormant_canceled=CANCELED,
        ),
        **_active_dormant("failed", FAILED, FAILED),
        **_task_done(
            "remediated",
            active_incomplete=PAUSING,
            active_completed=PAUSING,
            active_paused=PAUSING,
            active_canceled=CANCELING,
            dormant_incomplete=PAUSED,
            dormant_completed=PAUSED,
            dormant_paused=PAUSED,
            dormant_canceled=CANCELED,
        ),
        "task_canceling": CANCELING,
        **_active_dormant("canceled", CANCELING, CANCELED),
        **_active_dormant("retrying", PAUSING, PAUSED),
    },
    PAUSED: {
        "workflow_running": RUNNING,
        "workflow_running_workflow_completed": SUCCEEDED,
        "workflow_resuming": RESUMING,
        "workflow_resuming_workflow_completed": SUCCEEDED,
        "workflow_canceling_workflow_dormant": CANCELED,
        "workflow_canceled_workflow_dormant": CANCELED,
        "workflow_failed": FAILED,
        "task_running": RUNNING,
        "task_resuming": RUNNING,
    },
    RESUMING: {
        **_PAUSE,
        **_CANCEL,
        "workflow_running": RUNNING,
        "workflow_failed": FAILED,
        "task_running": RUNNING,
        **_active_dormant("pending", PAUSING, PAUSED),
        **_resuming_finish("succeeded"),
        **_active_dormant("failed", FAILED, FAILED),
        **_resuming_finish("remediated"),
        "task_canceling": CANCELING,
        **_active_dormant("canceled", CANCELING, CANCELED),
    },
    CANCELING: {
        **_CANCEL,
        "workflow_failed": FAILED,
        **_active_dormant("pending", CANCELING, CANCELED),
        **_active_dormant("paused", CANCELING, CANCELED),
        **_task_done(
            "succeeded",
            active_incomplete=CANCELING,
            active_completed=CANCELING,
            dormant_incomplete=CANCELED,
            dormant_completed=CANCELED,
            dormant_paused=CANCELED,
            dormant_canceled=CANCELED,
        ),
        **_active_dormant("failed", CANCELING, CANCELED),
        **_task_done(
            "remediated",
            active_incomplete=CANCELING,
            active_completed=CANCELING,
            dormant_incomplete=CANCELED,
            dormant_completed=CANCELED,
            dormant_paused=CANCELED,
            dormant_canceled=CANCELED,
        ),
        **_active_dormant("canceled", CANCELING, CANCELED),
        **_active_dormant("retrying", CANCELING, CANCELED),
    },
    CANCELED: {},
    SUCCEEDED: {"workflow_failed": FAILED},
    FAILED: {},
}

# Task events that carry whether other tasks are still active.
CONDITIONAL_TASK_EVENTS = frozenset(
    {
        "task_pending",
        "task_paused",
        "task_succeeded",
        "task_failed",
        "task_remediated",
        "task_canceled",
        "task_retrying",
    }
)


class StatusTransitionError(Exception):
    """An event arrived for a status the machine has no table for."""


def next_task_status(current: str, event: str) -> str:
    """The task status after ``event`` (unchanged when the table has no entry)."""
    table = TASK_MACHINE.get(current)
    if table is None:
        raise StatusTransitionError(
            f'Unable to process event "{event}" for task in "{current}" status.'
        )
    return table.get(event, current)


def next_workflow_status(current: str, event: str) -> str | None:
    """The workflow status after ``event``; None when the table has no entry for it (nothing
    changes then)."""
    table = WORKFLOW_MACHINE.get(current)
    if table is None:
        raise StatusTransitionError(
            f'Unable to process event "{event}" for workflow in "{current}" status.'
        )
    return table.get(event)


__all__ = [
    "ABENDED",
    "ACTIVE",
    "COMPLETED",
    "ITEM_QUALIFIED",
    "RUNNING_STATUSES",
    "next_task_status",
    "next_workflow_status",
]
