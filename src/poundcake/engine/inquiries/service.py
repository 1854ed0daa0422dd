"""Inquiries: ask, list, answer and expire, as StackStorm's inquiry service does.

An inquiry has no table of its own (as in StackStorm): it is an execution of the ``inquirer``
runner, its result holding ``schema``, ``roles``, ``users``, ``route`` and ``ttl``.

- :func:`await_response` records the runner's ``pending`` outcome: the execution goes
  ``running -> pending`` (lease released), a ``core.st2.generic.inquiry`` trigger instance
  ``{id, route}`` is stored for the rules engine, and the action-chain workflow the inquiry runs
  in is paused (:func:`~poundcake.engine.executions.pausing.pause_root`), all in one transaction.
- :func:`respond` checks the inquiry, the responder and the response, then resumes the paused
  workflow and moves the inquiry to ``succeeded`` with ``result.response``, in one transaction.
- :func:`expire_inquiries` ends inquiries older than their ``ttl`` minutes in ``timeout`` (a
  ``ttl`` of 0 or less never expires) and resumes their workflow, which then sees the task
  timed out.

Functions take the session and never commit; the ``announce_*`` functions run after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from amqp.exceptions import AMQPError  # type: ignore[import-untyped]
from kombu.exceptions import KombuError
from sqlalchemy.orm import Session

from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.pausing import (
    Resumed,
    hand_over_resumed,
    locked_status,
    pause_root,
    resume_parents,
)
from poundcake.engine.executions.service import (
    DEFAULT_MAX_RESULT_BYTES,
    complete,
    shape_result,
    transition,
)
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.inquiries.responses import check_permission, validate_response
from poundcake.engine.messaging import Publisher
from poundcake.engine.triggers.instances import (
    announce_trigger_instances,
    create_trigger_instance,
)
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.exceptions import NotFoundError, ValidationError

logger = logging.getLogger(__name__)

S = ExecutionStatus
INQUIRER = "inquirer"
INQUIRY_TRIGGER = "core.st2.generic.inquiry"
UPDATE_EVENT = "st2.execution__update"
NOT_FOUND = "The resource could not be found."


@dataclass(frozen=True)
class Waiting:
    """An execution that now waits for a response, and what changed with it."""

    execution: ExecutionDB
    paused: list[ExecutionDB] = field(default_factory=list)
    trigger_instances: list[TriggerInstanceDB] = field(default_factory=list)


@dataclass(frozen=True)
class Answered:
    """An inquiry that got its response (or timed out), and the workflow that resumes."""

    execution: ExecutionDB
    resumed: Resumed | None


def _requester(execution: ExecutionDB) -> str:
    return str((execution.context or {}).get("user") or execution.context_user or "")


def await_response(
    session: Session,
    *,
    liveaction_id: str,
    result: Any,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> Waiting:
    """A runner's ``pending`` outcome: record it, store the inquiry trigger, pause the chain.

    A cancel that came while the runner ran wins: the execution ends canceled instead.
    """
    stored, size, truncated = shape_result(result, max_result_bytes)
    moved = transition(
        session,
        liveaction_id=liveaction_id,
        to=S.PENDING,
        allowed_from=(S.RUNNING,),
        liveaction_values={"lease_owner": None, "lease_expires_at": None},
        execution_values={"result": stored, "result_size": size, "result_truncated": truncated},
    )
    execution = session.scalars(
        sa.select(ExecutionDB).where(ExecutionDB.liveaction_id == liveaction_id)
    ).one()
    if not moved:
        complete(
            session,
            liveaction_id=liveaction_id,
            status=S.CANCELED,
            result=result,
            max_result_bytes=max_result_bytes,
        )
        return Waiting(execution)
    instances = []
    if execution.runner_type == INQUIRER:
        route = result.get("route") if isinstance(result, dict) else None
        payload = {"id": execution.id, "route": str(route or "")}
        instances.append(
            create_trigger_instance(session=session, trigger_ref=INQUIRY_TRIGGER, payload=payload)
        )
    paused = pause_root(session, execution, user=_requester(execution))
    if paused:
        logger.info("Inquiry %s paused workflow %s", execution.id, ", ".join(e.id for e in paused))
    return Waiting(execution, paused, instances)


def _announce(publisher: Publisher, executions: list[ExecutionDB]) -> None:
    for execution in executions:
        body = {"liveaction_id": execution.liveaction_id, "execution_id": execution.id}
        try:
            publisher.event(UPDATE_EVENT, body)
        except (OSError, KombuError, AMQPError):
            logger.exception("Could not announce the update of execution %s", execution.id)


def announce_waiting(publisher: Publisher, waiting: Waiting) -> None:
    """After commit: announce the paused workflows and ring the rules engine."""
    _announce(publisher, waiting.paused)
    announce_trigger_instances(publisher, waiting.trigger_instances)


def announce_answered(publisher: Publisher, answered: Answered) -> None:
    """After commit: hand the resumed workflow over and announce what changed."""
    if answered.resumed is not None:
        hand_over_resumed(publisher, answered.resumed)
    _announce(publisher, [answered.execution])
    if answered.resumed is not None:
        resumed = answered.resumed
        body = {"liveaction_id": resumed.liveaction_id, "execution_id": resumed.execution_id}
        try:
            publisher.event(UPDATE_EVENT, body)
        except (OSError, KombuError, AMQPError):
            logger.exception("Could not announce the resume of %s", resumed.execution_id)


def check_inquiry(execution: ExecutionDB, status: ExecutionStatus | None = None) -> None:
    """Refuse what is not an inquiry waiting for a response (StackStorm's 400 messages)."""
    status = status or ExecutionStatus(execution.status)
    if execution.runner_type != INQUIRER:
        raise ValidationError(f'Action execution "{execution.id}" is not an inquiry.')
    if status == S.TIMEOUT:
        raise ValidationError(f'Inquiry "{execution.id}" timed out and cannot be responded to.')
    if status != S.PENDING:
        raise ValidationError(f'Inquiry "{execution.id}" has already been responded to.')


def get_inquiry(session: Session, inquiry_id: str) -> ExecutionDB:
    """A pending inquiry by id; 404 when there is no such execution, 400 when it is not one."""
    execution = session.get(ExecutionDB, inquiry_id)
    if execution is None:
        raise NotFoundError(NOT_FOUND)
    check_inquiry(execution)
    return execution


def _pending() -> tuple[sa.ColumnElement[bool], ...]:
    return ExecutionDB.runner_type == INQUIRER, ExecutionDB.status == S.PENDING.value


def list_inquiries(
    session: Session, *, limit: int | None, offset: int
) -> tuple[int, list[ExecutionDB]]:
    """How many inquiries wait for a response, and one page of them, newest first."""
    total = session.scalar(sa.select(sa.func.count(ExecutionDB.id)).where(*_pending()))
    query = (
        sa.select(ExecutionDB)
        .where(*_pending())
        .order_by(ExecutionDB.start_timestamp.desc(), ExecutionDB.id.desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return int(total or 0), list(session.scalars(query))


def respond(
    session: Session,
    inquiry_id: str,
    response: Any,
    *,
    user: str,
    user_roles: Collection[str] | None = None,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
) -> Answered:
    """Answer an inquiry as ``user``: checked, then its workflow resumed and it succeeded."""
    execution = session.get(ExecutionDB, inquiry_id)
    if execution is None:
        raise NotFoundError(NOT_FOUND)
    check_inquiry(execution, locked_status(session, execution))
    result: dict[str, Any] = dict(execution.result or {})
    check_permission(execution.id, result, user, user_roles)
    validate_response(execution.id, result.get("schema") or {}, response)
    # The workflow is resumed first, as StackStorm does: it then finds the answered task when
    # it runs again (both commit together here anyway).
    resumed = resume_parents(session, execution, user=user)
    stored, size, truncated = shape_result({**result, "response": response}, max_result_bytes)
    transition(
        session,
        liveaction_id=execution.liveaction_id or "",
        to=S.SUCCEEDED,
        allowed_from=(S.PENDING,),
        execution_values={"result": stored, "result_size": size, "result_truncated": truncated},
    )
    session.flush()
    session.refresh(execution)
    logger.info("Inquiry %s answered by %s", execution.id, user)
    return Answered(execution, resumed)


def _expires_at(execution: ExecutionDB) -> datetime | None:
    ttl = (execution.result or {}).get("ttl") if isinstance(execution.result, dict) else None
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        logger.warning("Inquiry %s has no integer ttl (%r); it never expires", execution.id, ttl)
        return None
    if ttl <= 0:
        return None
    return execution.start_timestamp + timedelta(minutes=ttl)


@dataclass(frozen=True)
class Expiry:
    """One batch of :func:`expire_inquiries`: how many it read, what timed out, where it ended."""

    read: int
    expired: list[Answered]
    cursor: tuple[datetime, str] | None


def expire_inquiries(
    session: Session,
    *,
    now: datetime,
    limit: int,
    user: str,
    after: tuple[datetime, str] | None = None,
) -> Expiry:
    """End in ``timeout`` the pending inquiries (up to ``limit`` read, oldest first, after
    ``after``) older than their ttl, and resume their workflows as ``user``."""
    query = (
        sa.select(ExecutionDB)
        .where(*_pending())
        .order_by(ExecutionDB.start_timestamp, ExecutionDB.id)
    )
    if after is not None:
        moment, last_id = after
        query = query.where(
            sa.or_(
                ExecutionDB.start_timestamp > moment,
                sa.and_(ExecutionDB.start_timestamp == moment, ExecutionDB.id > last_id),
            )
        )
    candidates = list(session.scalars(query.limit(limit)))
    expired = []
    for execution in candidates:
        deadline = _expires_at(execution)
        if deadline is None or deadline >= now:
            continue
        if locked_status(session, execution) != S.PENDING:
            continue
        resumed = resume_parents(session, execution, user=user)
        transition(
            session,
            liveaction_id=execution.liveaction_id or "",
            to=S.TIMEOUT,
            allowed_from=(S.PENDING,),
        )
        session.flush()
        session.refresh(execution)
        logger.info("Inquiry %s timed out after its ttl", execution.id)
        expired.append(Answered(execution, resumed))
    last = candidates[-1] if candidates else None
    cursor = (last.start_timestamp, last.id) if last is not None else None
    return Expiry(len(candidates), expired, cursor)
