"""Accepting an Alertmanager webhook: the API call, its episodes and their deliveries, at once.

:func:`accept_webhook` runs :func:`record_webhook` in one transaction (again after a deadlock):

1. every alert is upserted into ``poundcake_alerts`` by its deterministic id, in one multi-row
   statement and without reading first (MariaDB ``INSERT ... ON DUPLICATE KEY UPDATE``, SQLite
   ``INSERT ... ON CONFLICT DO UPDATE``), rows in id order so that concurrent requests lock
   episodes in the same order. A known episode gets one more delivery: ``delivery_count`` + 1,
   ``last_request_id``, ``updated_at``, the request id appended to ``request_ids`` (up to 50),
   the newest annotations. A resolved delivery closes the episode (``alertmanager_status`` resolved,
   ``ends_at``, ``resolved_at``); resolved is final, a later firing delivery does not reopen it.
   ``ends_at`` is only set when the episode ends (a firing alert's ``endsAt`` is a keep-alive
   deadline, not an end);
2. one ``poundcake_alert_deliveries`` row per accepted alert (the outbox), in one statement; their
   ids come back through ``RETURNING`` (MariaDB 10.5+, SQLite 3.35+), else are selected by
   request id in the same transaction;
3. the ``poundcake_api_calls`` row (status 202), last, so its duration covers the work.

The caller commits nothing: the transaction is committed before :func:`accept_webhook` returns,
and only then may the request be answered and the delivery ids queued.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.multirow import insert_rows
from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.remediation.alerts.lifecycle import AlertState
from poundcake.remediation.alerts.models import Alert, AlertDelivery
from poundcake.remediation.alerts.trigger import RESOLVED
from poundcake.remediation.intake.models import ApiCall
from poundcake.remediation.intake.payload import ParsedAlert, WebhookPayload

logger = logging.getLogger(__name__)

# Where Alertmanager posts (mounted without a prefix); the first is the documented one. These
# routes write their own API call record, in the intake transaction.
WEBHOOK_PATHS = ("/api/v1/webhook", "/webhook")
MAX_REQUEST_IDS = 50
MAX_ERROR = 2000
ACCEPTED_STATUS = 202
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{8,64}")

_ALERTS = cast(sa.Table, Alert.__table__)
_DELIVERIES = cast(sa.Table, AlertDelivery.__table__)
_CALLS = cast(sa.Table, ApiCall.__table__)


def new_request_id() -> str:
    """Return a fresh request id (uuid4, 32 hex digits)."""
    return uuid.uuid4().hex


def is_valid_request_id(value: str) -> bool:
    """Tell whether a client's ``X-Request-ID`` may be kept: 8 to 64 of ``[A-Za-z0-9._:-]``."""
    return REQUEST_ID_PATTERN.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One API request as ``poundcake_api_calls`` keeps it: never a credential or query string."""

    request_id: str
    method: str
    path: str
    received_at: datetime
    client_ip: str | None = None
    user_agent: str | None = None
    body_size: int | None = None
    status_code: int | None = None
    duration_ms: float | None = None
    error: str | None = None

    def row(self) -> dict[str, Any]:
        """The column values."""
        return {
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "status_code": self.status_code,
            "duration_ms": self.duration_ms,
            "client_ip": self.client_ip,
            "user_agent": self.user_agent,
            "body_size": self.body_size,
            "error": self.error,
            "received_at": self.received_at,
        }


@dataclass(frozen=True, slots=True)
class Accepted:
    """A committed webhook: the request id it was stored under and its delivery ids."""

    request_id: str
    delivery_ids: tuple[int, ...]


def _alert_upsert_mysql() -> sa.Insert:
    statement = mysql.insert(_ALERTS)
    new, old = statement.inserted, _ALERTS.c
    # The multi-row INSERT is rendered around the statement's VALUES row (db/multirow.py, or
    # PyMySQL's executemany), which needs an ON DUPLICATE KEY clause without parameters:
    # constants are inlined.
    resolved: sa.ColumnElement[str] = sa.literal_column(f"'{RESOLVED}'")
    closes = sa.and_(old.alertmanager_status != resolved, new.alertmanager_status == resolved)
    # MariaDB applies these assignments in order and later ones see earlier results: whatever
    # reads the old status comes before the status itself.
    return statement.on_duplicate_key_update(
        [
            ("ends_at", sa.case((closes, new.ends_at), else_=old.ends_at)),
            ("resolved_at", sa.case((closes, new.updated_at), else_=old.resolved_at)),
            (
                "alertmanager_status",
                sa.case(
                    (new.alertmanager_status == resolved, resolved), else_=old.alertmanager_status
                ),
            ),
            ("annotations", new.annotations),
            (
                "request_ids",
                sa.case(
                    (
                        sa.func.json_length(old.request_ids)
                        < sa.literal_column(str(MAX_REQUEST_IDS)),
                        sa.func.json_array_append(
                            old.request_ids, sa.literal_column("'$'"), new.last_request_id
                        ),
                    ),
                    else_=old.request_ids,
                ),
            ),
            ("last_request_id", new.last_request_id),
            ("delivery_count", old.delivery_count + sa.literal_column("1")),
            ("updated_at", new.updated_at),
        ]
    )


def _alert_upsert_sqlite() -> sa.Insert:
    statement = sqlite.insert(_ALERTS)
    new, old = statement.excluded, _ALERTS.c
    closes = sa.and_(old.alertmanager_status != RESOLVED, new.alertmanager_status == RESOLVED)
    return statement.on_conflict_do_update(
        index_elements=[old.id],
        set_={
            "ends_at": sa.case((closes, new.ends_at), else_=old.ends_at),
            "resolved_at": sa.case((closes, new.updated_at), else_=old.resolved_at),
            "alertmanager_status": sa.case(
                (new.alertmanager_status == RESOLVED, RESOLVED), else_=old.alertmanager_status
            ),
            "annotations": new.annotations,
            "request_ids": sa.case(
                (
                    sa.func.json_array_length(old.request_ids) < MAX_REQUEST_IDS,
                    sa.func.json_insert(old.request_ids, "$[#]", new.last_request_id),
                ),
                else_=old.request_ids,
            ),
            "last_request_id": new.last_request_id,
            "delivery_count": old.delivery_count + 1,
            "updated_at": new.updated_at,
        },
    )


_ALERT_UPSERTS = {"mysql": _alert_upsert_mysql(), "sqlite": _alert_upsert_sqlite()}
_INSERT_DELIVERIES = sa.insert(_DELIVERIES)
_INSERT_DELIVERIES_RETURNING = sa.insert(_DELIVERIES).returning(_DELIVERIES.c.id)
_SELECT_DELIVERIES = sa.select(_DELIVERIES.c.id).where(
    _DELIVERIES.c.request_id == sa.bindparam("request_id")
)
_INSERT_CALL = sa.insert(_CALLS)


def _episode_row(alert: ParsedAlert, now: datetime) -> dict[str, Any]:
    """An episode's own column values (:func:`_episode_shared` has the request's)."""
    resolved = alert.alertmanager_status == RESOLVED
    return {
        "id": alert.alert_id,
        "fingerprint": alert.fingerprint,
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at if resolved else None,
        "alert_name": alert.alert_name,
        "severity": alert.severity,
        "alertmanager_status": alert.alertmanager_status,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "generator_url": alert.generator_url,
        "resolved_at": now if resolved else None,
    }


def _episode_shared(request_id: str, now: datetime) -> dict[str, Any]:
    return {
        "state": AlertState.RECEIVED.value,
        "request_id": request_id,
        "last_request_id": request_id,
        "request_ids": [request_id],
        "delivery_count": 1,
        "created_at": now,
        "updated_at": now,
    }


def _delivery_row(alert: ParsedAlert) -> dict[str, Any]:
    """A delivery's own column values (:func:`_delivery_shared` has the request's)."""
    return {"alert_id": alert.alert_id, "alertmanager_status": alert.alertmanager_status}


def _delivery_shared(payload: WebhookPayload, call: CallRecord) -> dict[str, Any]:
    return {
        "request_id": call.request_id,
        "notification_reason": payload.notification_reason,
        "receiver": payload.receiver,
        "group_key": payload.group_key,
        "received_at": call.received_at,
        "attempts": 0,
    }


def rejections_summary(payload: WebhookPayload) -> str | None:
    """The rejected alerts in one line for the API call's ``error`` column, or None."""
    if not payload.rejected:
        return None
    parts = [f"alert {item.index}: {item.error}" for item in payload.rejected]
    summary = f"{len(parts)} alert(s) rejected: " + "; ".join(parts)
    return summary[:MAX_ERROR]


def record_webhook(
    session: Session, *, payload: WebhookPayload, call: CallRecord, started: float | None = None
) -> tuple[int, ...]:
    """Store the episodes, deliveries and API call of one webhook; return the delivery ids.

    ``started`` (a :func:`time.perf_counter` reading) dates the request for ``duration_ms``.
    """
    now = utcnow()
    # Core statements on the session's connection: no ORM state is involved, and skipping the
    # ORM execution path is a measurable share of the intake's CPU.
    connection = session.connection()
    ids: tuple[int, ...] = ()
    if payload.alerts:
        episodes = sorted(
            (_episode_row(alert, now) for alert in payload.alerts), key=lambda row: str(row["id"])
        )
        deliveries = [_delivery_row(alert) for alert in payload.alerts]
        ids = _store_alerts(
            connection,
            episodes,
            _episode_shared(call.request_id, now),
            deliveries,
            _delivery_shared(payload, call),
        )
    duration = (time.perf_counter() - started) * 1000 if started is not None else None
    row = replace(
        call,
        status_code=ACCEPTED_STATUS,
        duration_ms=duration,
        error=rejections_summary(payload),
    ).row()
    connection.execute(_INSERT_CALL, row)
    return ids


def _store_alerts(
    connection: sa.Connection,
    episodes: list[dict[str, Any]],
    episode_shared: dict[str, Any],
    deliveries: list[dict[str, Any]],
    delivery_shared: dict[str, Any],
) -> tuple[int, ...]:
    """Upsert the episodes, insert the deliveries; return the deliveries' ids.

    On MariaDB each statement's values shared by every row are escaped once
    (:func:`~poundcake.db.multirow.insert_rows`): SQLAlchemy and PyMySQL processing and escaping
    the same request id, timestamps and receiver for every row was the largest share of the
    intake's CPU per alert.
    """
    dialect = connection.dialect
    if dialect.name == "mysql" and dialect.insert_executemany_returning:
        insert_rows(connection, _ALERT_UPSERTS["mysql"], episodes, episode_shared)
        returned = insert_rows(
            connection, _INSERT_DELIVERIES_RETURNING, deliveries, delivery_shared
        )
        return tuple(int(row[0]) for row in returned)
    connection.execute(
        _ALERT_UPSERTS[dialect.name], [{**row, **episode_shared} for row in episodes]
    )
    rows = [{**row, **delivery_shared} for row in deliveries]
    if dialect.insert_executemany_returning:
        return tuple(connection.execute(_INSERT_DELIVERIES_RETURNING, rows).scalars())
    connection.execute(_INSERT_DELIVERIES, rows)
    request_id = delivery_shared["request_id"]
    return tuple(connection.execute(_SELECT_DELIVERIES, {"request_id": request_id}).scalars())


def accept_webhook(
    sessions: sessionmaker[Session],
    *,
    payload: WebhookPayload,
    call: CallRecord,
    client_chose_id: bool = False,
    started: float | None = None,
) -> Accepted:
    """Record a webhook in one committed transaction.

    A request id the client chose (``X-Request-ID``) that is already recorded is replaced by a
    fresh one, and the client's one is logged.
    """
    try:
        ids = in_transaction(
            sessions, lambda s: record_webhook(s, payload=payload, call=call, started=started)
        )
        return Accepted(call.request_id, ids)
    except sa.exc.IntegrityError as error:
        if not (client_chose_id and is_taken_request_id(error)):
            raise
    fresh = replace(call, request_id=new_request_id())
    logger.info(
        "X-Request-ID %s is already recorded; the request is recorded as %s",
        call.request_id,
        fresh.request_id,
    )
    ids = in_transaction(
        sessions, lambda s: record_webhook(s, payload=payload, call=fresh, started=started)
    )
    return Accepted(fresh.request_id, ids)


def is_taken_request_id(error: sa.exc.IntegrityError) -> bool:
    """Tell whether an integrity error is a second API call under one request id."""
    return _CALLS.name in str(error.orig)


def insert_api_calls(session: Session, calls: Sequence[CallRecord]) -> None:
    """Store API calls in one multi-row statement."""
    session.execute(_INSERT_CALL, [call.row() for call in calls])


def request_id_taken(session: Session, request_id: str) -> bool:
    """Tell whether an API call is already recorded under ``request_id``."""
    found = session.execute(
        sa.select(_CALLS.c.id).where(_CALLS.c.request_id == request_id).limit(1)
    )
    return found.first() is not None
