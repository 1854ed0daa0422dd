"""The decision log read back: for the trail, ``poundcake alerts show``, the UI and ``/metrics``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.base import table_of
from poundcake.db.types import utcnow
from poundcake.engine.public import isoformat
from poundcake.remediation.guards.models import Decision


def decision_document(row: Decision) -> dict[str, Any]:
    """One decision as JSON."""
    return {
        "id": row.id,
        "alert_id": row.alert_id,
        "request_id": row.request_id,
        "cab": row.cab_name,
        "decision": row.decision,
        "reason": row.reason,
        "detail": row.detail,
        "group": row.group_key,
        "target": row.target,
        "blast_group": row.blast_group,
        "rendered": row.rendered,
        "decided_at": isoformat(row.created_at),
    }


def record_outcome(
    session: Session,
    *,
    alert_id: str,
    request_id: str | None,
    cab_name: str | None,
    outcome: str,
    reason: str,
    detail: str,
) -> None:
    """Log what came of an admitted run (``verified`` or ``unverified``) beside the decisions
    that let it run, so the decision log answers "did it work" too; budgets count only runs."""
    session.execute(
        sa.insert(table_of(Decision)),
        [
            {
                "alert_id": alert_id,
                "request_id": request_id,
                "cab_name": cab_name or "",
                "decision": outcome,
                "reason": reason,
                "detail": detail,
                "group_key": "",
                "created_at": utcnow(),
            }
        ],
    )


def decisions_of(session: Session, alert_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Every decision for these episodes, oldest first, by episode."""
    ids = list(alert_ids)
    found: dict[str, list[dict[str, Any]]] = {alert_id: [] for alert_id in ids}
    if not ids:
        return found
    rows = session.scalars(
        sa.select(Decision).where(Decision.alert_id.in_(ids)).order_by(Decision.id)
    )
    for row in rows:
        found[row.alert_id].append(decision_document(row))
    return found


def decision_counts(session: Session) -> list[tuple[str, str, str, int]]:
    """How many decisions of each CAB, decision and reason were recorded (for ``/metrics``)."""
    query = sa.select(
        Decision.cab_name, Decision.decision, Decision.reason, sa.func.count()
    ).group_by(Decision.cab_name, Decision.decision, Decision.reason)
    return [
        (cab, decision, reason, int(count))
        for cab, decision, reason, count in session.execute(query)
    ]


def recent_decisions(session: Session, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest decisions that held or ran something (not the misses), newest first."""
    rows = session.scalars(
        sa.select(Decision)
        .where(Decision.decision != "not_matched")
        .order_by(Decision.id.desc())
        .limit(limit)
    )
    return [decision_document(row) for row in rows]
