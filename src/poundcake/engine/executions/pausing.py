"""Pausing and resuming workflow executions, as StackStorm's action service does.

A pause moves a running workflow to ``pausing`` and, for a runner type that cascades, its running
child workflows too; the workflow stops where it can (an action-chain: once its running task
ends) and its runner records it ``paused``, releasing the lease: no thread waits for it. A resume
moves a ``paused`` workflow (or one still ``pausing``) to ``resuming``; once that is committed,
the runner type's hand-over passes it to whatever continues it. For an action-chain that is the
action runners' workflow queue: a runner claims it (``resuming -> running``) and the chain goes
on from the tasks it recorded. A workflow resumed while still ``pausing`` is handed over by its
own runner when it stops (the claim only takes a workflow no runner holds).

An execution that waits for a response (``pending``, an inquiry) pauses the workflows above it up
to the topmost pausable one, unless it runs under an Orquesta workflow (``context.orquesta``):
the workflow engine pauses those itself. :func:`resume_parents` resumes the same workflow (the
direct parent under Orquesta) when the response comes or the inquiry times out.

:data:`PAUSABLE_RUNNERS` is the one place that says which runner types pause, and how each one is
handed over after a resume.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from amqp.exceptions import AMQPError  # type: ignore[import-untyped]
from kombu.exceptions import KombuError
from sqlalchemy.orm import Session

from poundcake.engine.executions.models import ExecutionDB, LiveActionDB
from poundcake.engine.executions.service import (
    DEFAULT_MAX_RESULT_BYTES,
    complete,
    shape_result,
    transition,
    updated_context,
)
from poundcake.engine.executions.states import PAUSE_STATES, ExecutionStatus
from poundcake.engine.messaging import Publisher
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)

S = ExecutionStatus
# The execution context key that says an execution runs under an Orquesta workflow.
ORQUESTA_CONTEXT_KEY = "orquesta"
Resumer = Callable[[Publisher, str, str], None]


@dataclass(frozen=True)
class PauseSupport:
    """How one workflow runner type takes pause and resume requests."""

    # Called after a resume is committed, with (publisher, liveaction id, execution id).
    hand_over: Resumer
    # Whether a pause also pauses the workflow's running child workflows.
    cascade: bool = True


def _to_action_runners(publisher: Publisher, liveaction_id: str, execution_id: str) -> None:
    publisher.work(liveaction_id, execution_id, workflow=True)


def _to_workflow_engines(publisher: Publisher, liveaction_id: str, execution_id: str) -> None:
    """An Orquesta workflow's engine takes a resume from the execution's update event."""
    body = {"liveaction_id": liveaction_id, "execution_id": execution_id}
    publisher.event("st2.execution__update", body)


PAUSABLE_RUNNERS: dict[str, PauseSupport] = {
    "action-chain": PauseSupport(hand_over=_to_action_runners),
    # The workflow engine passes a resume down to paused child workflows itself.
    "orquesta": PauseSupport(hand_over=_to_workflow_engines),
}


@dataclass(frozen=True)
class Resumed:
    """A workflow moved to ``resuming``: what its hand-over needs after commit."""

    execution_id: str
    liveaction_id: str
    runner_type: str


def check_pausable(execution: ExecutionDB, verb: str) -> PauseSupport:
    """The runner type's pause support, or StackStorm's refusal."""
    support = PAUSABLE_RUNNERS.get(execution.runner_type)
    if support is None:
        raise ValidationError(
            f'Unable to {verb} liveaction "{execution.liveaction_id}" because it is not '
            f'supported by the "{execution.runner_type}" runner.'
        )
    return support


def locked_status(session: Session, execution: ExecutionDB) -> ExecutionStatus:
    """The execution's status, read with its live action's row locked."""
    status = session.scalar(
        sa.select(LiveActionDB.status)
        .where(LiveActionDB.id == (execution.liveaction_id or ""))
        .with_for_update()
    )
    return ExecutionStatus(status or execution.status)


def _move(
    session: Session,
    execution: ExecutionDB,
    current: ExecutionStatus,
    to: ExecutionStatus,
    context: Mapping[str, Any],
) -> None:
    liveaction_id = execution.liveaction_id or ""
    changed = updated_context(session, liveaction_id, context)
    if not transition(
        session,
        liveaction_id=liveaction_id,
        to=to,
        allowed_from=(current,),
        liveaction_values=changed,
        execution_values=changed,
    ):
        raise ValidationError(
            f'Unable to update liveaction "{liveaction_id}": its status changed meanwhile; '
            "try again."
        )


def request_pause(session: Session, execution: ExecutionDB, *, user: str) -> list[ExecutionDB]:
    """``running -> pausing`` (nothing for one pausing or paused); return the executions moved,
    cascaded children included."""
    support = check_pausable(execution, "pause")
    current = locked_status(session, execution)
    if current in PAUSE_STATES:
        return []
    if current != S.RUNNING:
        raise ValidationError(
            f'Unable to pause liveaction "{execution.liveaction_id}" because it is not in a '
            "running state."
        )
    _move(session, execution, current, S.PAUSING, {"paused_by": user})
    moved = [execution]
    if support.cascade:
        for child in _running_child_workflows(session, execution):
            moved += request_pause(session, child, user=user)
    return moved


def _running_child_workflows(session: Session, execution: ExecutionDB) -> list[ExecutionDB]:
    return list(
        session.scalars(
            sa.select(ExecutionDB).where(
                ExecutionDB.parent == execution.id,
                ExecutionDB.status == S.RUNNING.value,
                ExecutionDB.runner_type.in_(sorted(PAUSABLE_RUNNERS)),
            )
        )
    )


def request_resume(session: Session, execution: ExecutionDB, *, user: str) -> Resumed | None:
    """``paused`` (or ``pausing``) -> ``resuming``; None for one running or resuming already.

    Hand what it returns to :func:`hand_over_resumed` once the transaction is committed.
    """
    check_pausable(execution, "resume")
    current = locked_status(session, execution)
    if current in (S.RUNNING, S.RESUMING):
        return None
    if current not in PAUSE_STATES:
        raise ValidationError(
            f'Unable to resume liveaction "{execution.liveaction_id}" because it is in '
            f'"{current.value}" state and not in "paused" state.'
        )
    _move(session, execution, current, S.RESUMING, {"resumed_by": user})
    return Resumed(execution.id, execution.liveaction_id or "", execution.runner_type)


def hand_over_resumed(publisher: Publisher, resumed: Resumed) -> None:
    """After commit, pass a resumed workflow to whatever continues it; a broker failure is
    logged (the scheduler's sweep hands over resumed work nobody took)."""
    support = PAUSABLE_RUNNERS.get(resumed.runner_type)
    if support is None:
        return
    try:
        support.hand_over(publisher, resumed.liveaction_id, resumed.execution_id)
    except (OSError, KombuError, AMQPError):
        logger.exception(
            "Could not hand over resumed execution %s; the scheduler's sweep will",
            resumed.execution_id,
        )


def under_orquesta(execution: ExecutionDB) -> bool:
    """Whether the execution runs under an Orquesta workflow (StackStorm's rule)."""
    return ORQUESTA_CONTEXT_KEY in (execution.context or {})


def workflow_root(session: Session, execution: ExecutionDB) -> ExecutionDB | None:
    """The topmost ancestor reached through pausable workflows (None without such a parent)."""
    root: ExecutionDB | None = None
    current = execution
    while current.parent:
        parent = session.get(ExecutionDB, current.parent)
        if parent is None or parent.runner_type not in PAUSABLE_RUNNERS:
            break
        root = current = parent
    return root


def pause_root(session: Session, execution: ExecutionDB, *, user: str) -> list[ExecutionDB]:
    """Pause the workflow a pending execution waits in; return the executions moved."""
    if not execution.parent or under_orquesta(execution):
        return []
    root = workflow_root(session, execution)
    if root is None or locked_status(session, root) != S.RUNNING:
        return []
    return request_pause(session, root, user=user)


def resume_parents(session: Session, execution: ExecutionDB, *, user: str) -> Resumed | None:
    """Resume the workflow an execution (an inquiry) paused: under Orquesta its parent,
    otherwise the root :func:`pause_root` paused; nothing when it is not paused."""
    if not execution.parent:
        return None
    if under_orquesta(execution):
        target = session.get(ExecutionDB, execution.parent)
    else:
        target = workflow_root(session, execution)
    if target is None or target.runner_type not in PAUSABLE_RUNNERS:
        return None
    if locked_status(session, target) not in PAUSE_STATES:
        return None
    return request_resume(session, target, user=user)


def record_paused(
    session: Session,
    *,
    liveaction_id: str,
    result: Any,
    context: Mapping[str, Any] | None = None,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> ExecutionStatus | None:
    """A workflow's runner stopped where it can go on: record its result and context, release
    the lease, and return the status it is in now.

    ``paused`` normally; ``resuming`` when a resume came before it stopped (the caller hands it
    over after commit); ``canceled`` when a cancel came. None when it had ended already.
    """
    status = session.scalar(
        sa.select(LiveActionDB.status).where(LiveActionDB.id == liveaction_id).with_for_update()
    )
    if status is None:
        return None
    current = ExecutionStatus(status)
    if current == S.CANCELING:
        complete(
            session,
            liveaction_id=liveaction_id,
            status=S.CANCELED,
            result=result,
            max_result_bytes=max_result_bytes,
            workflow=True,
            context=context,
        )
        return S.CANCELED
    stored, size, truncated = shape_result(result, max_result_bytes)
    changed = updated_context(session, liveaction_id, context)
    release: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, **changed}
    shown = {"result": stored, "result_size": size, "result_truncated": truncated, **changed}
    if current in (S.RUNNING, S.PAUSING):
        transition(
            session,
            liveaction_id=liveaction_id,
            to=S.PAUSED,
            allowed_from=(current,),
            liveaction_values=release,
            execution_values=shown,
        )
        return S.PAUSED
    if current == S.RESUMING:
        session.execute(
            sa.update(LiveActionDB).where(LiveActionDB.id == liveaction_id).values(**release)
        )
        session.execute(
            sa.update(ExecutionDB).where(ExecutionDB.liveaction_id == liveaction_id).values(**shown)
        )
        return S.RESUMING
    logger.warning("Live action %s stopped while %s; its outcome is dropped", liveaction_id, status)
    return None
