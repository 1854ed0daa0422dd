"""Finding the workflows that have something to do.

:func:`workflows_of` answers an announcement (the live actions whose executions changed) with
the workflows those changes concern; :func:`workflows_needing_attention` finds the same kinds of
change that no announcement brought, for the workflow engines' sweep. A change is an action's
execution in a status its conductor has not taken, or a pause, resume or cancel asked of the
workflow's own execution (or a workflow started or re-run) that was not carried out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.states import ExecutionStatus as S
from poundcake.engine.workflows import machines as m
from poundcake.engine.workflows.children import OPEN_STATUSES, SEEN_STATUSES
from poundcake.engine.workflows.models import WorkflowActionDB, WorkflowExecutionDB


def _changed_actions() -> sa.Select[Any]:
    """Workflows with an action whose execution changed in a way the conductor has not taken."""
    return (
        sa.select(WorkflowActionDB.workflow_execution)
        .join(ExecutionDB, ExecutionDB.id == WorkflowActionDB.action_execution)
        .where(
            WorkflowActionDB.status.in_(OPEN_STATUSES),
            ExecutionDB.status.in_(SEEN_STATUSES),
            ExecutionDB.status != WorkflowActionDB.status,
        )
    )


def _untaken_requests() -> sa.Select[Any]:
    """Workflows asked to pause, resume or cancel (by their execution) and not there yet, and
    workflows started or re-run whose first tasks were not requested."""
    return (
        sa.select(WorkflowExecutionDB.id)
        .join(ExecutionDB, ExecutionDB.id == WorkflowExecutionDB.action_execution)
        .where(
            WorkflowExecutionDB.status.notin_(sorted(m.COMPLETED)),
            sa.or_(
                sa.and_(
                    ExecutionDB.status.in_([S.PAUSING.value, S.RESUMING.value, S.CANCELING.value]),
                    ExecutionDB.status != WorkflowExecutionDB.status,
                ),
                WorkflowExecutionDB.status.in_([m.REQUESTED, m.RESUMING]),
            ),
        )
    )


def workflows_of(session: Session, liveaction_ids: Sequence[str]) -> set[str]:
    """The workflows that changes of these live actions give something to do: a task's
    execution the conductor has not seen in its new status, or a request on the workflow's own
    execution. Changes it does not act on (requested, scheduled, running) wake nothing."""
    ids = sorted(set(liveaction_ids))
    if not ids:
        return set()
    # One round trip for both kinds of change: every execution update of the engine comes here.
    both = sa.union(
        _changed_actions().where(ExecutionDB.liveaction_id.in_(ids)),
        _untaken_requests().where(ExecutionDB.liveaction_id.in_(ids)),
    )
    return {str(workflow) for workflow in session.scalars(both) if workflow}


def workflows_needing_attention(session: Session, *, limit: int) -> list[str]:
    """Workflows with changes no announcement brought (lost messages, a dead engine)."""
    found: list[str] = []
    for statement in (_changed_actions(), _untaken_requests()):
        for workflow_id in session.scalars(statement.limit(limit)):
            if workflow_id not in found:
                found.append(str(workflow_id))
    return found[:limit]
