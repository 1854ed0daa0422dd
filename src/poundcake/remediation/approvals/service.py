"""Approvals in the database: the guard step's gate, answers by compare-and-set, expiry, listing.

An approval-gated CAB that passes every other guard asks for one approval per episode
(:func:`gate`); the episode's delivery then waits, unprocessed, until the approval is answered or
expires. Answering moves ``pending`` to ``approved``, ``denied`` or ``expired`` once
(:func:`record_answer`, a compare-and-set: of two answers, one wins and the other is refused) and
hands the episode's deliveries back to the relay, so the guard step decides the alert again: an
approved CAB then goes on to the target lock and runs; a denied or expired one is held.

The engine's side (the inquiry that asks a person, answers given through ``st2 inquiry
respond``) is :mod:`poundcake.remediation.approvals.inquiries`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.engine.public import isoformat
from poundcake.exceptions import ConflictError, NotFoundError
from poundcake.remediation.alerts.lifecycle import AlertState
from poundcake.remediation.alerts.models import Alert, AlertDelivery
from poundcake.remediation.approvals.models import Approval
from poundcake.remediation.cabs.guard_fields import Approval as ApprovalField

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
EXPIRED = "expired"
STATES = (PENDING, APPROVED, DENIED, EXPIRED)
# Where an answer came from.
VIA = ("api", "cli", "ui", "st2")
# What expiry records as the answerer.
TTL = "ttl"


@dataclass(frozen=True)
class Gate:
    """What the approval says for one CAB of one alert: ``waiting``, ``run`` or ``held``."""

    decision: str
    detail: str
    # A new approval was asked for by this pass (its waiting decision is recorded once).
    asked: bool = False
    expires_at: datetime | None = None


def _answer_text(row: Approval) -> str:
    if row.state == EXPIRED:
        why = f": {row.comment}" if row.comment else ""
        return f"approval {row.id} expired unanswered (denied){why}"
    text = f"approval {row.id} {row.state} by {row.answered_by} via {row.answered_via}"
    return f"{text}: {row.comment}" if row.comment else text


def _find(session: Session, alert_id: str, cab_name: str) -> Approval | None:
    return session.scalar(
        sa.select(Approval).where(Approval.alert_id == alert_id, Approval.cab_name == cab_name)
    )


def gate(
    session: Session,
    *,
    alert_id: str,
    request_id: str | None,
    cab_name: str,
    approval: ApprovalField,
    ttl: float,
    now: datetime,
) -> Gate:
    """Ask for, or read, the approval of one CAB's run for an episode (alert row locked)."""
    row = _find(session, alert_id, cab_name)
    if row is None:
        row = Approval(
            alert_id=alert_id,
            request_id=request_id,
            cab_name=cab_name,
            state=PENDING,
            reason=approval.text()[:255],
            requested_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
        session.add(row)
        session.flush()
        detail = f"approval {row.id} asked ({row.reason}); expires at {isoformat(row.expires_at)}"
        return Gate("waiting", detail, asked=True, expires_at=row.expires_at)
    if row.state == PENDING and row.expires_at <= now:
        expire(session, row.id, now=now)
        session.refresh(row)
    if row.state == PENDING:
        detail = f"approval {row.id} pending until {isoformat(row.expires_at)}"
        return Gate("waiting", detail, expires_at=row.expires_at)
    return Gate("run" if row.state == APPROVED else "held", _answer_text(row))


def release_deliveries(session: Session, alert_ids: Iterable[str]) -> list[int]:
    """Hand the episodes' unprocessed deliveries back to the relay now; their ids."""
    ids = list(alert_ids)
    if not ids:
        return []
    found = list(
        session.scalars(
            sa.select(AlertDelivery.id).where(
                AlertDelivery.alert_id.in_(ids), AlertDelivery.processed_at.is_(None)
            )
        )
    )
    if found:
        session.execute(
            sa.update(AlertDelivery)
            .where(AlertDelivery.id.in_(found))
            .values(relayed_at=None, attempts=0)
            .execution_options(synchronize_session=False)
        )
    return found


def _answered(
    session: Session, approval_id: int, values: dict[str, Any], *, inquiry_id: str | None = None
) -> bool:
    """Move a pending approval to its answer, once; tell whether this call did."""
    query = sa.update(Approval).where(Approval.id == approval_id, Approval.state == PENDING)
    if inquiry_id is not None:
        query = query.where(Approval.inquiry_id == inquiry_id)
    else:
        query = query.where(Approval.inquiry_id.is_(None))
    result = session.execute(query.values(**values).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0) == 1


def get_approval(session: Session, approval_id: int) -> Approval:
    """One approval; NotFoundError when there is none."""
    row = session.get(Approval, approval_id, populate_existing=True)
    if row is None:
        raise NotFoundError(f"No approval with id {approval_id}")
    return row


def refusal(row: Approval) -> ConflictError:
    """Why an approval that is no longer pending cannot be answered again."""
    return ConflictError(f"Approval {row.id} cannot be answered: {_answer_text(row)}")


def record_answer(
    session: Session,
    approval_id: int,
    *,
    approved: bool,
    by: str,
    via: str,
    comment: str | None = None,
    inquiry_id: str | None = None,
) -> tuple[Approval, list[int]]:
    """Answer a pending approval (whose inquiry is ``inquiry_id``) and release its episode's
    deliveries; ConflictError when it was answered already. Flushes, never commits."""
    values = {
        "state": APPROVED if approved else DENIED,
        "answered_at": utcnow(),
        "answered_by": by[:255],
        "answered_via": via,
        "comment": comment,
    }
    if not _answered(session, approval_id, values, inquiry_id=inquiry_id):
        row = get_approval(session, approval_id)
        raise refusal(row)
    row = get_approval(session, approval_id)
    return row, release_deliveries(session, [row.alert_id])


def expire(session: Session, approval_id: int, *, now: datetime, why: str | None = None) -> bool:
    """End a pending approval as expired (denied); tell whether this call did."""
    result = session.execute(
        sa.update(Approval)
        .where(Approval.id == approval_id, Approval.state == PENDING)
        .values(state=EXPIRED, answered_at=now, answered_by=TTL, answered_via=TTL, comment=why)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


@dataclass(frozen=True)
class Expired:
    """What :func:`expire_due` ended: approvals, their inquiries, the deliveries released."""

    approval_ids: list[int]
    inquiry_ids: list[str]
    delivery_ids: list[int]


def expire_due(session: Session, *, now: datetime | None = None) -> Expired:
    """Expire the pending approvals past their ttl, and those whose episode ended meanwhile
    (resolved before it ran); release their episodes' deliveries."""
    now = now or utcnow()
    rows = session.execute(
        sa.select(
            Approval.id, Approval.alert_id, Approval.inquiry_id, Approval.expires_at, Alert.state
        )
        .join(Alert, Alert.id == Approval.alert_id)
        .where(
            Approval.state == PENDING,
            sa.or_(Approval.expires_at <= now, Alert.state != AlertState.RECEIVED.value),
        )
    ).all()
    approvals, inquiries, alerts = [], [], []
    for approval_id, alert_id, inquiry_id, expires_at, state in rows:
        why = None if expires_at <= now else f"the episode is {state}"
        if expire(session, approval_id, now=now, why=why):
            approvals.append(approval_id)
            alerts.append(alert_id)
            if inquiry_id:
                inquiries.append(inquiry_id)
    return Expired(approvals, inquiries, release_deliveries(session, alerts))


def approval_document(row: Approval, alert: Alert | None = None) -> dict[str, Any]:
    """One approval as JSON (the API, the CLI and the UI)."""
    document: dict[str, Any] = {
        "id": row.id,
        "alert_id": row.alert_id,
        "request_id": row.request_id,
        "cab": row.cab_name,
        "state": row.state,
        "reason": row.reason,
        "inquiry_id": row.inquiry_id,
        "requested_at": isoformat(row.requested_at),
        "expires_at": isoformat(row.expires_at),
        "answered_at": isoformat(row.answered_at) if row.answered_at else None,
        "answered_by": row.answered_by,
        "answered_via": row.answered_via,
        "comment": row.comment,
    }
    if alert is not None:
        document["alert"] = {
            "alertname": alert.alert_name,
            "severity": alert.severity,
            "labels": dict(alert.labels or {}),
            "state": alert.state,
        }
    return document


def list_approvals(
    session: Session, *, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Approvals, newest first, with their alerts; only those in ``state`` when given."""
    query = sa.select(Approval, Alert).join(Alert, Alert.id == Approval.alert_id)
    if state:
        query = query.where(Approval.state == state)
    query = query.order_by(Approval.id.desc()).limit(max(1, min(limit, 1000)))
    return [approval_document(row, alert) for row, alert in session.execute(query).all()]


def approvals_of(session: Session, alert_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The approvals of these episodes, oldest first, by episode (for the request trail)."""
    ids = list(alert_ids)
    found: dict[str, list[dict[str, Any]]] = {alert_id: [] for alert_id in ids}
    if ids:
        rows = session.scalars(
            sa.select(Approval).where(Approval.alert_id.in_(ids)).order_by(Approval.id)
        )
        for row in rows:
            found[row.alert_id].append(approval_document(row))
    return found


def unasked(session: Session, *, limit: int = 100) -> list[Approval]:
    """Pending approvals whose inquiry was not made yet, oldest first."""
    return list(
        session.scalars(
            sa.select(Approval)
            .where(Approval.state == PENDING, Approval.inquiry_id.is_(None))
            .order_by(Approval.id)
            .limit(limit)
        )
    )


def set_inquiry(session: Session, approval_id: int, inquiry_id: str) -> bool:
    """Store the inquiry of a pending approval that has none; tell whether it was stored."""
    result = session.execute(
        sa.update(Approval)
        .where(
            Approval.id == approval_id,
            Approval.state == PENDING,
            Approval.inquiry_id.is_(None),
        )
        .values(inquiry_id=inquiry_id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def asked(session: Session) -> list[tuple[int, str]]:
    """Pending approvals whose inquiry was made: (approval id, inquiry id)."""
    rows = session.execute(
        sa.select(Approval.id, Approval.inquiry_id).where(
            Approval.state == PENDING, Approval.inquiry_id.is_not(None)
        )
    ).all()
    return [(approval_id, str(inquiry_id)) for approval_id, inquiry_id in rows]


def closed_with_inquiries(session: Session, inquiry_ids: Iterable[str]) -> list[str]:
    """Of these (pending) inquiries, those whose approval is answered or expired already."""
    ids = list(inquiry_ids)
    if not ids:
        return []
    return [
        str(found)
        for found in session.scalars(
            sa.select(Approval.inquiry_id).where(
                Approval.inquiry_id.in_(ids), Approval.state != PENDING
            )
        )
    ]


def settled_since(session: Session, since: datetime) -> bool:
    """Tell whether an approval with an inquiry was answered or expired since ``since``."""
    found = session.scalar(
        sa.select(Approval.id)
        .where(
            Approval.state != PENDING,
            Approval.inquiry_id.is_not(None),
            Approval.answered_at >= since,
        )
        .limit(1)
    )
    return found is not None
