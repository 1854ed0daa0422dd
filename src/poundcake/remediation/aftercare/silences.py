"""Alertmanager silences while a CAB runs (a CAB's ``silence: true``).

A silence matching exactly the alert's labels is created once the episode's CAB is known and
its run has not ended (``matched`` or ``remediating``), and expired when the run ends. Each
silence is a ``poundcake_silences`` row, written (``creating``) and committed before
Alertmanager is asked, so nothing Alertmanager holds is unknown to the database:

* the row's id is in the silence's comment: a worker killed between the request and the record
  leaves a ``creating`` row whose silence :func:`sweep_silences` finds by that comment;
* every pass expires the silences of runs that have ended, whoever made them;
* the silence's own ``endsAt`` is ``POUNDCAKE_SILENCE_MAX_SECONDS`` away, so even a PoundCake
  that never comes back leaves nothing behind for longer than that.

Alertmanager being unreachable leaves the row as it is, for the next pass.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.ids import new_id
from poundcake.logging import request_id_var
from poundcake.remediation.aftercare.models import Silence
from poundcake.remediation.alertmanager_api import (
    CREATED_BY,
    EXPIRED,
    AlertmanagerClient,
    AlertmanagerError,
    AlertmanagerUnavailableError,
    label_matchers,
)
from poundcake.remediation.alerts.lifecycle import AlertState
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.cabs.service import cab_run_safety, silenced_cabs

logger = logging.getLogger(__name__)

CREATING = "creating"
ACTIVE = "active"
FAILED = "failed"
# Runs a silence covers: the CAB is known and has not ended.
RUNNING = (AlertState.MATCHED.value, AlertState.REMEDIATING.value)
# A ``creating`` row younger than this belongs to a worker still asking Alertmanager.
CREATING_GRACE = timedelta(seconds=30)
BATCH = 100


def comment_for(silence_id: str, alert: Alert) -> str:
    """The silence's comment: what made it, and the row that records it (found by the sweep)."""
    return (
        f"PoundCake: CAB {alert.cab_name} runs for alert {alert.id} "
        f"(request {alert.request_id}); poundcake-silence={silence_id}"
    )


def _wanting_silence(session: Session, limit: int) -> list[str]:
    """Alerts whose CAB wants a silence, running, without one yet."""
    names = silenced_cabs(session)
    if not names:
        return []
    rows = session.scalars(
        sa.select(Alert.id)
        .outerjoin(Silence, Silence.alert_id == Alert.id)
        .where(Alert.cab_name.in_(names), Alert.state.in_(RUNNING), Silence.id.is_(None))
        .order_by(Alert.id)
        .limit(limit)
    )
    return list(rows)


def _claim(session: Session, alert_id: str, max_seconds: int) -> tuple[Silence, str] | None:
    """Write the ``creating`` row for a running alert; None when it has one or stopped."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.state not in RUNNING or alert.cab_name is None:
        return None
    if not cab_run_safety(session, alert.cab_name).silence:
        return None
    if session.scalar(sa.select(Silence.id).where(Silence.alert_id == alert_id)) is not None:
        return None
    now = utcnow()
    row = Silence(
        id=new_id(),
        alert_id=alert.id,
        request_id=alert.request_id,
        cab_name=alert.cab_name,
        state=CREATING,
        matchers=label_matchers(alert.labels or {}),
        ends_at=now + timedelta(seconds=max_seconds),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row, comment_for(row.id, alert)


def start_silence(
    sessions: sessionmaker[Session],
    alertmanager: AlertmanagerClient,
    alert_id: str,
    max_seconds: int,
) -> str | None:
    """Silence a running alert whose CAB asks for it; the silence's id, or None."""
    try:
        claimed = in_transaction(sessions, lambda session: _claim(session, alert_id, max_seconds))
    except sa.exc.IntegrityError:
        return None  # another worker wrote the row first
    if claimed is None:
        return None
    row, comment = claimed
    try:
        silence_id = alertmanager.create_silence(row.matchers, utcnow(), row.ends_at, comment)
    except AlertmanagerUnavailableError as error:
        logger.warning("Silence for alert %s waits for Alertmanager: %s", alert_id, error)
        return None
    except AlertmanagerError as error:
        refusal = str(error)
        in_transaction(sessions, lambda session: _record(session, row.id, None, FAILED, refusal))
        logger.warning("Alertmanager refused the silence for alert %s: %s", alert_id, refusal)
        return None
    in_transaction(sessions, lambda session: _record(session, row.id, silence_id, ACTIVE, None))
    logger.info("Silence %s covers alert %s while CAB %s runs", silence_id, alert_id, row.cab_name)
    return silence_id


def _record(
    session: Session, row_id: str, silence_id: str | None, state: str, error: str | None
) -> None:
    values: dict[str, Any] = {"state": state, "error": error, "updated_at": utcnow()}
    if silence_id is not None:
        values["silence_id"] = silence_id
    if state == EXPIRED:
        values["expired_at"] = utcnow()
    session.execute(sa.update(Silence).where(Silence.id == row_id).values(**values))


def _ended(session: Session, limit: int) -> list[Silence]:
    """Rows to settle: a silence whose run ended, or a ``creating`` row left by a worker."""
    stale = utcnow() - CREATING_GRACE
    return list(
        session.scalars(
            sa.select(Silence)
            .join(Alert, Alert.id == Silence.alert_id)
            .where(
                sa.or_(
                    sa.and_(Silence.state == ACTIVE, Alert.state.not_in(RUNNING)),
                    sa.and_(Silence.state == CREATING, Silence.updated_at < stale),
                )
            )
            .order_by(Silence.id)
            .limit(limit)
        )
    )


def _find_by_comment(alertmanager: AlertmanagerClient, row_id: str) -> str | None:
    marker = f"poundcake-silence={row_id}"
    for silence in alertmanager.silences():
        state = (silence.get("status") or {}).get("state")
        comment = str(silence.get("comment") or "")
        if silence.get("createdBy") == CREATED_BY and comment.endswith(marker) and state != EXPIRED:
            return str(silence["id"])
    return None


def _running(session: Session, alert_id: str) -> bool:
    return session.scalar(sa.select(Alert.state).where(Alert.id == alert_id)) in RUNNING


def settle_silence(
    sessions: sessionmaker[Session], alertmanager: AlertmanagerClient, row: Silence
) -> None:
    """Expire the silence of a run that ended; finish a ``creating`` row a worker left."""
    silence_id = row.silence_id
    if row.state == CREATING:
        silence_id = _find_by_comment(alertmanager, row.id)
        if in_transaction(sessions, lambda session: _running(session, row.alert_id)):
            if silence_id is None:
                # Never created: start again from a fresh row.
                in_transaction(
                    sessions,
                    lambda session: session.execute(sa.delete(Silence).where(Silence.id == row.id)),
                )
                return
            in_transaction(
                sessions, lambda session: _record(session, row.id, silence_id, ACTIVE, None)
            )
            return
    if silence_id is not None:
        alertmanager.expire_silence(silence_id)
    in_transaction(sessions, lambda session: _record(session, row.id, silence_id, EXPIRED, None))
    logger.info("Silence %s of alert %s expired: the run ended", silence_id, row.alert_id)


def sweep_silences(
    sessions: sessionmaker[Session], alertmanager: AlertmanagerClient, max_seconds: int
) -> tuple[int, int]:
    """Create the silences running CABs want and expire those of ended runs: (made, expired)."""
    made = 0
    for alert_id in in_transaction(sessions, lambda session: _wanting_silence(session, BATCH)):
        if start_silence(sessions, alertmanager, alert_id, max_seconds) is not None:
            made += 1
    ended = in_transaction(sessions, lambda session: _ended(session, BATCH))
    for row in ended:
        token = request_id_var.set(row.request_id)
        try:
            settle_silence(sessions, alertmanager, row)
        except AlertmanagerUnavailableError as error:
            logger.warning("Expiring silences waits for Alertmanager: %s", error)
            break
        finally:
            request_id_var.reset(token)
    return made, len(ended)
