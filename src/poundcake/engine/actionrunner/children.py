"""Child executions of a workflow execution (action-chain tasks): request, wait, cancel.

:class:`ExecutionChildren` implements the runners' ``ChildExecutions`` protocol for one parent
execution. A child is recorded with ``parent`` set (and appended to the parent's ``children``)
and a context in StackStorm's shape, ``{"parent": {..., "execution_id", "user"}, "chain": {...},
"user": ...}``, then announced to the scheduler like any other request. ``wait`` polls the
database until the child completes (``wait_settled`` also returns when it pauses or waits for a
response, which pauses an action-chain); when the parent is being canceled (or has ended) it
cancels the child and waits a grace period for it to stop. ``workflow_status`` tells the
parent's runner whether a pause was asked for, and ``resume`` resumes a paused child. A parent
whose runner type cancels gracefully (``GRACEFUL_CANCEL_RUNNER_TYPES``, the ``steps`` runner)
lets a running child finish while it is being canceled; a child that has not started is
canceled. ``action`` tells a workflow runner the runner type and parameter schema of an action
before it requests a child of it.

A workflow's runner thread blocks in ``wait`` while its children run in other runner threads,
so an action runner process needs a concurrency of at least 2 to run chains (one more per level
of nesting, and more for chains running side by side); otherwise a chain waits for a child that
never gets a thread.

A workflow that can resume (the ``steps`` runner) is given a ``released`` event: once the action
runner sets it (shutting down), ``request`` and ``wait`` raise :class:`WorkflowReleasedError`
instead of starting or waiting for anything, and ``existing`` tells the runner that resumes it
which children were already requested, so none is requested twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Generator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.session import unit_of_work
from poundcake.engine.actionrunner.statusboard import StatusBoard
from poundcake.engine.actions.models import ActionDB
from poundcake.engine.actions.parameters import merge_schemas
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.pausing import hand_over_resumed, locked_status, request_resume
from poundcake.engine.executions.service import (
    GRACEFUL_CANCEL_RUNNER_TYPES,
    NOT_STARTED,
    cancel_execution,
    cancel_unstarted,
    request_execution,
)
from poundcake.engine.executions.states import COMPLETED, PAUSE_STATES, ExecutionStatus
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.messaging import Publisher
from poundcake.engine.runners.models import RunnerTypeDB
from poundcake.exceptions import NotFoundError, PoundCakeError

logger = logging.getLogger(__name__)

S = ExecutionStatus
DEFAULT_POLL_INTERVAL = 0.1
DEFAULT_CANCEL_GRACE_SECONDS = 30.0
# Where a child stops being waited for by ``wait_settled``: it ended, paused, or waits for a
# response.
SETTLED: frozenset[ExecutionStatus] = COMPLETED | {S.PAUSED, S.PENDING}
# A paused action-chain keeps its variables in its context, as StackStorm does; they are not
# passed on to its children as part of ``context.parent``.
UNINHERITED_CONTEXT_KEYS = frozenset({"vars"})


class WorkflowReleasedError(Exception):
    """The action runner is shutting down and hands the workflow back to be resumed."""


class ExecutionChildren:
    """Starts and follows the children of one parent execution, one unit of work per call."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: Publisher,
        *,
        parent_execution_id: str,
        user: str,
        parent_context: Mapping[str, Any] | None = None,
        cipher: DatastoreCipher | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        cancel_grace_seconds: float = DEFAULT_CANCEL_GRACE_SECONDS,
        released: threading.Event | None = None,
        board: StatusBoard | None = None,
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._parent_id = parent_execution_id
        self._user = user
        self._parent_context = dict(parent_context or {})
        self._cipher = cipher
        self._poll_interval = poll_interval
        self._cancel_grace_seconds = cancel_grace_seconds
        self._released = released
        self._board = board

    def _check_released(self) -> None:
        if self._released is not None and self._released.is_set():
            raise WorkflowReleasedError(f"workflow execution {self._parent_id} released")

    def existing(self) -> list[tuple[str, dict[str, Any]]]:
        """The children already requested, in order: (execution id, context)."""
        with self._sessions() as session:
            ids = list(
                session.scalar(
                    sa.select(ExecutionDB.children).where(ExecutionDB.id == self._parent_id)
                )
                or []
            )
            rows = session.execute(
                sa.select(ExecutionDB.id, ExecutionDB.context).where(ExecutionDB.id.in_(ids))
            ).all()
        contexts = {row.id: dict(row.context or {}) for row in rows}
        return [(child, contexts[child]) for child in ids if child in contexts]

    def earlier_run(self, execution_id: str) -> tuple[list[tuple[str, dict[str, Any], str]], Any]:
        """The children of another execution (a run this one resumes), in order, as
        (execution id, context, status), and that execution's own context."""
        with self._sessions() as session:
            row = session.execute(
                sa.select(ExecutionDB.children, ExecutionDB.context).where(
                    ExecutionDB.id == execution_id
                )
            ).one_or_none()
            if row is None:
                return [], {}
            ids = list(row.children or [])
            rows = session.execute(
                sa.select(ExecutionDB.id, ExecutionDB.context, ExecutionDB.status).where(
                    ExecutionDB.id.in_(ids)
                )
            ).all()
        found = {
            child.id: (child.id, dict(child.context or {}), str(child.status)) for child in rows
        }
        return [found[child] for child in ids if child in found], dict(row.context or {})

    def request(
        self,
        action_ref: str,
        parameters: Mapping[str, Any],
        context: Mapping[str, Any],
        *,
        rendered: bool = False,
        notify: Mapping[str, Any] | None = None,
        skip_notify: bool = False,
    ) -> str:
        """Record a child in ``requested`` and announce it; return its execution id.

        ``rendered`` says the parameters are final (the workflow rendered them): text that came
        from an alert is then never rendered as a template again. Raises NotFoundError when the
        action does not exist and ValidationError when the request is refused (disabled action,
        bad parameters).
        """
        self._check_released()
        inherited = {
            key: value
            for key, value in self._parent_context.items()
            if key not in UNINHERITED_CONTEXT_KEYS
        }
        parent = {**inherited, "execution_id": self._parent_id, "user": self._user}
        child_context = {**context, "parent": parent, "user": self._user}
        with unit_of_work(self._sessions) as session:
            if session.scalar(sa.select(ActionDB.id).where(ActionDB.ref == action_ref)) is None:
                raise NotFoundError(f'Action "{action_ref}" cannot be found.')
            requested = request_execution(
                session,
                action_ref=action_ref,
                parameters=dict(parameters),
                user=self._user,
                context=child_context,
                parent=self._parent_id,
                cipher=self._cipher,
                rendered=rendered,
                notify=notify,
                skip_notify=skip_notify,
            )
        self._publisher.requested(requested.liveaction_id, requested.execution_id)
        return requested.execution_id

    def action(self, action_ref: str) -> tuple[str, dict[str, Any]]:
        """Return an action's runner type and parameter schema (the runner's updated by the
        action's); raises NotFoundError when the action does not exist."""
        with self._sessions() as session:
            row = session.execute(
                sa.select(ActionDB.runner_type, ActionDB.parameters, RunnerTypeDB.runner_parameters)
                .outerjoin(RunnerTypeDB, RunnerTypeDB.name == ActionDB.runner_type)
                .where(ActionDB.ref == action_ref)
            ).one_or_none()
        if row is None:
            raise NotFoundError(f'Action "{action_ref}" cannot be found.')
        runner_type, parameters, runner_parameters = row
        return str(runner_type), merge_schemas(runner_parameters or {}, parameters or {})

    def wait(self, execution_id: str) -> tuple[ExecutionStatus, Any]:
        """Poll until the child completes; return its status and result."""
        return self._wait(execution_id, COMPLETED)

    def wait_settled(self, execution_id: str) -> tuple[ExecutionStatus, Any]:
        """Poll until the child completes, pauses or waits for a response; return its status
        and result."""
        return self._wait(execution_id, SETTLED)

    def workflow_status(self) -> ExecutionStatus:
        """The parent's own status now (a pause or cancel may have been asked for)."""
        with self._sessions() as session:
            status = session.scalar(
                sa.select(ExecutionDB.status).where(ExecutionDB.id == self._parent_id)
            )
        if status is None:
            raise NotFoundError(f"workflow execution {self._parent_id} not found")
        return S(status)

    def resume(self, execution_id: str) -> None:
        """Resume a paused child (a sub-workflow) and hand it over once committed; a child
        that is no longer paused is left as it is."""
        with unit_of_work(self._sessions) as session:
            child = session.get(ExecutionDB, execution_id)
            if child is None:
                raise NotFoundError(f"child execution {execution_id} not found")
            if locked_status(session, child) not in PAUSE_STATES:
                return
            resumed = request_resume(session, child, user=self._user)
        if resumed is not None:
            hand_over_resumed(self._publisher, resumed)
            self._publisher.event(
                "st2.execution__update",
                {"liveaction_id": resumed.liveaction_id, "execution_id": resumed.execution_id},
            )

    def _wait(
        self, execution_id: str, until: frozenset[ExecutionStatus]
    ) -> tuple[ExecutionStatus, Any]:
        stop_by: float | None = None
        with contextlib.closing(self._readings(execution_id)) as readings:
            for child, parent, graceful in readings:
                self._check_released()
                if child in until:
                    return S(child), self._result(execution_id)
                if graceful and parent == S.CANCELING:
                    # The running child of a graceful cancel finishes; one not started never will.
                    if child in NOT_STARTED:
                        self._cancel_unstarted(execution_id)
                elif stop_by is None and _stopping(parent):
                    logger.info(
                        "Parent %s is stopping; canceling child %s", self._parent_id, execution_id
                    )
                    stop_by = time.monotonic() + self._cancel_grace_seconds
                if stop_by is not None:
                    if time.monotonic() > stop_by:
                        logger.warning(
                            "Child %s did not stop within the grace period", execution_id
                        )
                        error = (
                            f"child execution {execution_id} did not stop after its parent ended"
                        )
                        return S.CANCELED, {"error": error}
                    if child != S.CANCELING:
                        # Asked again on every reading: a cancel that races the scheduler's own
                        # status change is lost, and the child must not outlive its parent.
                        self.cancel(execution_id)
        raise AssertionError("the readings never end")

    def _readings(self, execution_id: str) -> Generator[tuple[str, str | None, bool], None, None]:
        """The child's and the parent's statuses now, then once per poll interval: from the
        process's status board when there is one (one query for every waiting workflow),
        else read here."""
        yield self._statuses(execution_id)
        if self._board is None:
            while True:
                time.sleep(self._poll_interval)
                yield self._statuses(execution_id)
        with self._board.watching((execution_id, self._parent_id)) as watch:
            while True:
                found = watch.next()
                yield self._interpret(
                    execution_id, {key: (row.status, row.runner_type) for key, row in found.items()}
                )

    def cancel(self, execution_id: str) -> None:
        """Ask for the child to be canceled; errors are logged, as ``wait`` tries again."""
        try:
            with unit_of_work(self._sessions) as session:
                outcome = cancel_execution(session, execution_id, user=self._user)
        except (PoundCakeError, SQLAlchemyError):
            logger.exception("Canceling child execution %s failed", execution_id)
            return
        if outcome.refused:
            logger.debug("Child %s not canceled: %s", execution_id, outcome.refused)

    def _cancel_unstarted(self, execution_id: str) -> None:
        try:
            with unit_of_work(self._sessions) as session:
                cancel_unstarted(session, execution_id, user=self._user)
        except (PoundCakeError, SQLAlchemyError):
            logger.exception("Canceling child execution %s failed", execution_id)

    def _statuses(self, execution_id: str) -> tuple[str, str | None, bool]:
        """Return the child's status, the parent's (None when the parent is gone) and whether
        the parent cancels gracefully."""
        with self._sessions() as session:
            rows = session.execute(
                sa.select(ExecutionDB.id, ExecutionDB.status, ExecutionDB.runner_type).where(
                    ExecutionDB.id.in_([execution_id, self._parent_id])
                )
            ).all()
        return self._interpret(
            execution_id, {row.id: (row.status, row.runner_type) for row in rows}
        )

    def _interpret(
        self, execution_id: str, found: Mapping[str, tuple[str, str]]
    ) -> tuple[str, str | None, bool]:
        if execution_id not in found:
            raise NotFoundError(f"child execution {execution_id} not found")
        child_status = found[execution_id][0]
        parent = found.get(self._parent_id)
        if parent is None:
            return child_status, None, False
        parent_status, parent_runner = parent
        return child_status, parent_status, parent_runner in GRACEFUL_CANCEL_RUNNER_TYPES

    def _result(self, execution_id: str) -> Any:
        with self._sessions() as session:
            return session.scalar(
                sa.select(ExecutionDB.result).where(ExecutionDB.id == execution_id)
            )


def _stopping(parent_status: str | None) -> bool:
    """Whether the parent's status says its children should stop (canceling, ended or gone)."""
    return parent_status is None or parent_status == S.CANCELING or parent_status in COMPLETED
