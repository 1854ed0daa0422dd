"""What the UI's dashboard and alert pages show, read from PoundCake's and the engine's tables.

Remediation outcomes count episodes: ``remediated`` are episodes in state ``remediated`` plus
resolved ones whose CAB workflow succeeded; ``failed`` are episodes in state ``failed`` plus
resolved ones whose workflow ended failed, timed out, abandoned or canceled.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.types import utcnow
from poundcake.engine.public import (
    COMPLETED_STATUSES,
    FAILED_STATUSES,
    ExecutionDB,
    ExecutionStatus,
    isoformat,
)
from poundcake.remediation.alerts.lifecycle import AlertState
from poundcake.remediation.alerts.models import Alert, AlertDelivery
from poundcake.remediation.guards.breaker import breaker_states
from poundcake.remediation.guards.decisions import decisions_of, recent_decisions
from poundcake.remediation.intake.models import ApiCall
from poundcake.remediation.intake.service import WEBHOOK_PATHS
from poundcake.remediation.tracking.trail import (
    AlertFilters,
    alert_document,
    list_alerts,
    silence_of,
)

DAYS = 7
RECENT = 20
SUCCEEDED = frozenset({ExecutionStatus.SUCCEEDED.value})
FAILED = COMPLETED_STATUSES - SUCCEEDED
# Only these count as failed days on the executions chart (canceled is an operator's choice).
FAILED_RUNS = FAILED_STATUSES


def ui_alert(alert: Alert) -> dict[str, Any]:
    """An alert as the UI shows it: the operator API's document plus ``name``."""
    return {"name": alert.alert_name, **alert_document(alert)}


def alerts_page(
    session: Session,
    *,
    state: str | None,
    severity: str | None,
    name: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Episodes by filters, most recently updated first."""
    filters = AlertFilters(state=state or None, severity=severity or None, name=name or None)
    _total, alerts = list_alerts(session, filters, limit=limit)
    return [ui_alert(alert) for alert in alerts]


def alert_with_deliveries(session: Session, alert: Alert) -> dict[str, Any]:
    """An episode with each delivery and whether it started the remediation."""
    deliveries = session.scalars(
        sa.select(AlertDelivery)
        .where(AlertDelivery.alert_id == alert.id)
        .order_by(AlertDelivery.id)
    )
    return {
        **ui_alert(alert),
        "silence": silence_of(session, alert.id),
        "decisions": decisions_of(session, [alert.id])[alert.id],
        "deliveries": [
            {
                "request_id": delivery.request_id,
                "received_at": isoformat(delivery.received_at),
                "status": delivery.alertmanager_status,
                "started_remediation": delivery.request_id == alert.request_id,
            }
            for delivery in deliveries
        ],
    }


def alerts_by_state(session: Session) -> dict[str, int]:
    """How many episodes are in each state (every state named, zeros included)."""
    counts = dict.fromkeys((state.value for state in AlertState), 0)
    rows = session.execute(sa.select(Alert.state, sa.func.count()).group_by(Alert.state))
    for state, count in rows:
        counts[str(state)] = int(count)
    return counts


def remediation_outcomes(session: Session) -> dict[str, Any]:
    """Remediated and failed episodes, and the share remediated (None before any ended)."""
    by_state = alerts_by_state(session)
    resolved_runs = session.execute(
        sa.select(ExecutionDB.status, sa.func.count())
        .join(Alert, Alert.workflow_execution_id == ExecutionDB.id)
        .where(Alert.state == AlertState.RESOLVED.value)
        .group_by(ExecutionDB.status)
    )
    remediated = by_state[AlertState.REMEDIATED.value]
    failed = by_state[AlertState.FAILED.value]
    for status, count in resolved_runs:
        if status in SUCCEEDED:
            remediated += int(count)
        elif status in FAILED:
            failed += int(count)
    ended = remediated + failed
    return {
        "remediated": remediated,
        "failed": failed,
        "success_rate": remediated / ended if ended else None,
    }


def executions_per_day(session: Session, *, today: date | None = None) -> list[dict[str, Any]]:
    """Executions started on each of the last 7 days (UTC), oldest first, by outcome."""
    last = today or utcnow().date()
    days = [last - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    since = datetime.combine(days[0], time.min, tzinfo=UTC)
    until = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    counts = {day: {"succeeded": 0, "failed": 0, "other": 0} for day in days}
    started_on = sa.func.date(ExecutionDB.start_timestamp)
    rows = session.execute(
        sa.select(started_on, ExecutionDB.status, sa.func.count())
        .where(ExecutionDB.start_timestamp >= since, ExecutionDB.start_timestamp < until)
        .group_by(started_on, ExecutionDB.status)
    )
    for started, status, count in rows:
        day = started if isinstance(started, date) else date.fromisoformat(str(started))
        if day not in counts:
            continue
        kind = (
            "succeeded" if status in SUCCEEDED else "failed" if status in FAILED_RUNS else "other"
        )
        counts[day][kind] += int(count)
    return [{"date": day.isoformat(), **counts[day]} for day in days]


def recent_activity(session: Session, *, limit: int = RECENT) -> list[dict[str, Any]]:
    """The newest alert changes, executions and Alertmanager requests, newest first."""
    items: list[tuple[datetime, dict[str, Any]]] = []
    for alert in session.scalars(
        sa.select(Alert).order_by(Alert.updated_at.desc(), Alert.id.desc()).limit(limit)
    ):
        summary = f"{alert.alert_name} ({alert.severity or 'no severity'}) is {alert.state}"
        items.append(
            (
                alert.updated_at,
                {"kind": "alert", "summary": summary, "alert_id": alert.id},
            )
        )
    executions = session.execute(
        sa.select(ExecutionDB.id, ExecutionDB.action, ExecutionDB.status, ExecutionDB.context)
        .add_columns(ExecutionDB.start_timestamp)
        .order_by(ExecutionDB.start_timestamp.desc(), ExecutionDB.id.desc())
        .limit(limit)
    )
    for execution_id, action, status, context, started in executions:
        entry: dict[str, Any] = {
            "kind": "execution",
            "summary": f"{action} {status}",
            "execution_id": execution_id,
        }
        entry.update(_context_links(context))
        items.append((started, entry))
    for call in session.scalars(
        sa.select(ApiCall)
        .where(ApiCall.path.in_(WEBHOOK_PATHS))
        .order_by(ApiCall.received_at.desc())
        .limit(limit)
    ):
        summary = f"{call.method} {call.path} answered {call.status_code}"
        items.append((call.received_at, {"kind": "request", "summary": summary}))
        items[-1][1]["request_id"] = call.request_id
    items.sort(key=lambda item: item[0], reverse=True)
    return [{"at": isoformat(at), **entry} for at, entry in items[:limit]]


def _context_links(context: Any) -> dict[str, str]:
    links: dict[str, str] = {}
    if isinstance(context, dict):
        for key in ("request_id", "alert_id"):
            value = context.get(key)
            if isinstance(value, str) and value:
                links[key] = value
    return links


def dashboard(session: Session, *, breaker_quiet_seconds: float) -> dict[str, Any]:
    """The dashboard document."""
    return {
        "alerts_by_state": alerts_by_state(session),
        "remediation": remediation_outcomes(session),
        "executions_per_day": executions_per_day(session),
        "recent": recent_activity(session),
        "breakers": [
            state.document()
            for state in breaker_states(session, quiet_seconds=breaker_quiet_seconds)
        ],
        "decisions": recent_decisions(session, limit=50),
    }
