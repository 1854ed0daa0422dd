"""Approvals through the engine's inquiries: asking a person, and every way of answering.

Each pending approval is asked as an inquiry (a ``core.ask`` execution; docs/inquiries.md) whose
response is ``{"approved": true|false, "by": "<who>", "via": "<path>", "comment": "..."}``
(``by``, ``via`` and ``comment`` optional). The engine answers an
inquiry once, so it decides which of two answers wins; PoundCake's row then follows it by
compare-and-set:

* :func:`answer` (the API, the CLI, the UI) responds to the inquiry first, then records the
  answer; an approval whose inquiry is not made yet is answered in the database alone, and its
  inquiry is then never made;
* :func:`tend` (poundcake-beat's ``poundcake.approvals``, every few seconds) makes the missing
  inquiries, expires overdue approvals (canceling their inquiries), records answers given
  through ``st2 inquiry respond``, and cancels inquiries whose approval was settled without them.

No database lock is held across an engine call.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.exceptions import ConflictError
from poundcake.remediation.approvals import service
from poundcake.remediation.approvals.models import Approval
from poundcake.remediation.engine_api import EngineApi, EngineError, EngineNotFoundError

logger = logging.getLogger(__name__)

ASK_ACTION = "core.ask"
# The inquiry's context names its approval (how it is found again after a crash).
CONTEXT_KEY = "poundcake_approval_id"
ROUTE = "poundcake-approvals"
SCHEMA = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "required": True},
        "by": {"type": "string"},
        "via": {"type": "string"},
        "comment": {"type": "string"},
    },
}
# The engine's inquiry goes pending shortly after it is asked; an answer waits for it this long.
READY_WAIT_SECONDS = 10.0
READY_POLL_SECONDS = 0.2
# How long after an approval is settled its inquiry is still looked for among the pending.
STALE_SECONDS = 600.0
ANSWERED_STATUSES = ("succeeded",)
WAITING_STATUSES = ("requested", "scheduled", "running", "delayed")

Sessions = sessionmaker[Session]


def _parameters(row: Approval) -> dict[str, Any]:
    ttl_seconds = max(1.0, (row.expires_at - row.requested_at).total_seconds())
    return {
        "schema": SCHEMA,
        "route": ROUTE,
        # Minutes, as StackStorm's; PoundCake expires the approval itself at its own ttl.
        "ttl": max(1, math.ceil(ttl_seconds / 60)),
    }


def _context(row: Approval) -> dict[str, Any]:
    return {
        CONTEXT_KEY: str(row.id),
        "request_id": row.request_id,
        "alert_id": row.alert_id,
        "cab": row.cab_name,
    }


def _cancel(engine_api: EngineApi, inquiry_id: str) -> None:
    try:
        engine_api.cancel_execution(inquiry_id)
    except EngineNotFoundError:
        return
    except EngineError as error:
        logger.warning("Could not cancel inquiry %s: %s", inquiry_id, error)


# --- answering through PoundCake ---------------------------------------------------------


def _respond(engine_api: EngineApi, inquiry_id: str, response: dict[str, Any]) -> None:
    """Respond to the inquiry, waiting briefly for one asked a moment ago to be pending."""
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while True:
        try:
            engine_api.respond_inquiry(inquiry_id, response)
            return
        except EngineError as error:
            if error.status_code != 400:
                raise
            status = str(engine_api.get_execution(inquiry_id).get("status") or "")
            if status not in WAITING_STATUSES or time.monotonic() >= deadline:
                raise ConflictError(
                    f"The engine refused the answer to inquiry {inquiry_id}: "
                    f"{error.faultstring or error}"
                ) from None
        time.sleep(READY_POLL_SECONDS)


def _current(session: Session, approval_id: int) -> Approval:
    """The approval, expired first if its ttl has passed (an expired one is never answered)."""
    row = service.get_approval(session, approval_id)
    if row.state == service.PENDING and row.expires_at <= utcnow():
        if service.expire(session, approval_id, now=utcnow()):
            service.release_deliveries(session, [row.alert_id])
        row = service.get_approval(session, approval_id)
    return row


def answer(
    sessions: Sessions,
    engine_api: EngineApi,
    approval_id: int,
    *,
    approved: bool,
    by: str,
    via: str,
    comment: str | None = None,
) -> tuple[dict[str, Any], list[int]]:
    """Approve or deny a pending approval once; its document and the deliveries released.

    ConflictError when it was answered (or expired) already, however it was answered.
    """
    for _ in range(3):
        row = in_transaction(sessions, lambda session: _current(session, approval_id))
        if row.state != service.PENDING:
            raise service.refusal(row)
        inquiry_id = row.inquiry_id
        if inquiry_id is not None:
            response: dict[str, Any] = {"approved": approved, "by": by, "via": via}
            if comment:
                response["comment"] = comment
            try:
                _respond(engine_api, inquiry_id, response)
            except ConflictError:
                # Answered in the engine first (``st2 inquiry respond``): record that, refuse.
                sync_one(sessions, engine_api, approval_id, inquiry_id)
                current = in_transaction(
                    sessions, lambda session: service.get_approval(session, approval_id)
                )
                if current.state != service.PENDING:
                    raise service.refusal(current) from None
                raise
        try:
            found, released = in_transaction(
                sessions,
                functools.partial(
                    service.record_answer,
                    approval_id=approval_id,
                    approved=approved,
                    by=by,
                    via=via,
                    comment=comment,
                    inquiry_id=inquiry_id,
                ),
            )
        except ConflictError:
            current = in_transaction(
                sessions, lambda session: service.get_approval(session, approval_id)
            )
            if current.state == service.PENDING:
                continue  # its inquiry was made meanwhile: answer through it
            if inquiry_id is not None and current.answered_by == by[:255]:
                # The sync recorded our own engine answer first.
                return service.approval_document(current), []
            raise
        return service.approval_document(found), released
    raise ConflictError(f"Approval {approval_id} kept changing; try again")


# --- the periodic pass ---------------------------------------------------------------------


@dataclass(frozen=True)
class _EngineAnswer:
    """How a finished inquiry ended, as the engine has it."""

    state: str
    approved: bool = False
    by: str = "the engine"
    via: str = "st2"
    comment: str | None = None


def _answer_from(document: dict[str, Any]) -> _EngineAnswer:
    status = str(document.get("status") or "")
    result = document.get("result")
    response = result.get("response") if isinstance(result, dict) else None
    if status not in ANSWERED_STATUSES or not isinstance(response, dict):
        return _EngineAnswer(status, comment=f"the inquiry ended {status}")
    by, via, comment = response.get("by"), response.get("via"), response.get("comment")
    return _EngineAnswer(
        "answered",
        approved=response.get("approved") is True,
        by=str(by) if by else "an engine user",
        # PoundCake's own answers name their path; anything else came through the engine.
        via=str(via) if via in service.VIA else "st2",
        comment=str(comment) if comment else None,
    )


def sync_one(
    sessions: Sessions, engine_api: EngineApi, approval_id: int, inquiry_id: str
) -> list[int] | None:
    """Record the answer of an inquiry that is no longer pending in the engine: the deliveries
    released, or None when the approval did not change."""
    try:
        document = engine_api.get_execution(inquiry_id)
    except EngineNotFoundError:
        document = {"status": "gone"}
    status = str(document.get("status") or "")
    if status in WAITING_STATUSES or status == "pending":
        return None
    found = _answer_from(document)

    def record(session: Session) -> list[int] | None:
        if found.state == "timeout":
            if not service.expire(session, approval_id, now=utcnow(), why=found.comment):
                return None
            row = service.get_approval(session, approval_id)
            return service.release_deliveries(session, [row.alert_id])
        try:
            _row, released = service.record_answer(
                session,
                approval_id,
                approved=found.approved,
                by=found.by,
                via=found.via,
                comment=found.comment,
                inquiry_id=inquiry_id,
            )
        except ConflictError:
            return None
        return released

    return in_transaction(sessions, record)


@dataclass
class Tended:
    """What one :func:`tend` pass did."""

    asked: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    synced: list[int] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    released: list[int] = field(default_factory=list)


def _ask(sessions: Sessions, engine_api: EngineApi, row: Approval) -> str | None:
    """Make (or find, after a crash) the inquiry of one approval and store its id."""
    inquiry_id = engine_api.find_execution(ASK_ACTION, CONTEXT_KEY, str(row.id))
    if inquiry_id is None:
        inquiry_id = engine_api.ask(_parameters(row), _context(row))
    made = inquiry_id
    if in_transaction(sessions, lambda session: service.set_inquiry(session, row.id, made)):
        logger.info("Approval %s asked as inquiry %s", row.id, made)
        return made
    # Answered (or expired) meanwhile: nobody needs the inquiry.
    _cancel(engine_api, made)
    return None


def tend(
    sessions: Sessions,
    engine_api: EngineApi,
    publish: Callable[[Sequence[int]], None] | None = None,
) -> Tended:
    """One pass over the approvals (see the module docstring)."""
    done = Tended()
    expired = in_transaction(sessions, lambda session: service.expire_due(session))
    done.expired, done.released = expired.approval_ids, list(expired.delivery_ids)
    for inquiry_id in expired.inquiry_ids:
        _cancel(engine_api, inquiry_id)
        done.canceled.append(inquiry_id)
    for row in in_transaction(sessions, lambda session: service.unasked(session)):
        if _ask(sessions, engine_api, row) is not None:
            done.asked.append(row.id)
    waiting = in_transaction(sessions, service.asked)
    # One call per pass while approvals are asked or lately settled (whose inquiries may still
    # wait in the engine): which inquiries still wait, and which of those nobody needs.
    since = utcnow() - timedelta(seconds=STALE_SECONDS)
    settled = in_transaction(sessions, lambda session: service.settled_since(session, since))
    pending = engine_api.pending_inquiries() if waiting or settled else set()
    for approval_id, inquiry_id in waiting:
        if inquiry_id in pending:
            continue
        released = sync_one(sessions, engine_api, approval_id, inquiry_id)
        if released is not None:
            done.synced.append(approval_id)
            done.released.extend(released)
    if pending:
        stale = in_transaction(
            sessions, lambda session: service.closed_with_inquiries(session, pending)
        )
        for inquiry_id in stale:
            _cancel(engine_api, inquiry_id)
            done.canceled.append(inquiry_id)
    if publish is not None and done.released:
        publish(sorted(set(done.released)))
    return done
