"""Live updates for the UI: execution events relayed from the engine's stream, alert changes.

:func:`relay_executions` follows ``ST2_STREAM_URL`` with PoundCake's API key (the browser never
sees it) and emits an ``execution`` event for each execution created or updated;
:func:`relay_alert_changes` polls PoundCake's alerts and emits an ``alert`` event for each
episode whose state changed, and ends the stream once the browser's session is logged out or
expired. Both run until cancelled (the browser went away), reconnecting or retrying after
failures.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread
import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import Settings
from poundcake.db.types import utcnow
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.engine_stream import (
    EventSplitter,
    check_stream,
    reconnect_delay,
    stream_request,
)
from poundcake.remediation.ui.models import UiSession

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
EXECUTION_EVENTS = "st2.execution__create,st2.execution__update"
ALERT_POLL_SECONDS = 2.0
MAX_ALERTS_PER_POLL = 200


def frame(event: str, data: dict[str, Any]) -> bytes:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def execution_event(document: Any) -> dict[str, Any] | None:
    """The ``execution`` event data of an engine execution document (None if it is not one)."""
    if not isinstance(document, dict) or not isinstance(document.get("id"), str):
        return None
    action = document.get("action")
    context = document.get("context")
    context = context if isinstance(context, dict) else {}
    parent_context = context.get("parent")
    parent_context = parent_context if isinstance(parent_context, dict) else {}
    return {
        "id": document["id"],
        "action": action.get("ref") if isinstance(action, dict) else action,
        "status": document.get("status"),
        "parent": document.get("parent") if isinstance(document.get("parent"), str) else None,
        "request_id": context.get("request_id") or parent_context.get("request_id"),
        "alert_id": context.get("alert_id") or parent_context.get("alert_id"),
    }


async def _follow_stream(settings: Settings, emit: Emit) -> None:
    timeout = httpx.Timeout(10.0, read=90.0)
    target = stream_request(settings, EXECUTION_EVENTS)
    async with (
        httpx.AsyncClient(timeout=timeout) as client,
        client.stream("GET", target.url, params=target.params, headers=target.headers) as response,
    ):
        check_stream(response)
        splitter = EventSplitter()
        async for line in response.aiter_lines():
            found = splitter.feed(line)
            if found is None:
                continue
            try:
                event = execution_event(json.loads(found[1]))
            except ValueError:
                event = None
            if event is not None:
                await emit("execution", event)


async def relay_executions(settings: Settings, emit: Emit) -> None:
    """Emit ``execution`` events from the engine's stream until cancelled."""
    attempt = 0
    while True:
        try:
            await _follow_stream(settings, emit)
            attempt = 0
        except httpx.HTTPError as error:
            level = logging.WARNING if attempt == 0 else logging.DEBUG
            logger.log(level, "The engine stream is unavailable to the UI (%s)", error)
        delay = reconnect_delay(attempt)
        attempt += 1
        await anyio.sleep(delay)


def session_is_live(session: Session, token_hash: str) -> bool:
    """Tell whether the UI session stored under ``token_hash`` still exists and is unexpired."""
    expires_at = session.scalar(
        sa.select(UiSession.expires_at).where(UiSession.token_hash == token_hash)
    )
    return expires_at is not None and expires_at > utcnow()


def alert_changes(
    sessions: sessionmaker[Session], since: datetime, known: dict[str, str]
) -> tuple[datetime, list[dict[str, Any]]]:
    """Alerts updated after ``since`` whose state differs from ``known`` (updated in place)."""
    with sessions() as session:
        rows = session.execute(
            sa.select(
                Alert.id, Alert.alert_name, Alert.state, Alert.alertmanager_status, Alert.updated_at
            )
            .where(Alert.updated_at >= since)
            .order_by(Alert.updated_at, Alert.id)
            .limit(MAX_ALERTS_PER_POLL)
        ).all()
    changed = []
    newest = since
    for row in rows:
        newest = max(newest, row.updated_at)
        if known.get(row.id) != f"{row.state}/{row.alertmanager_status}":
            known[row.id] = f"{row.state}/{row.alertmanager_status}"
            changed.append(
                {
                    "id": row.id,
                    "name": row.alert_name,
                    "state": row.state,
                    "status": row.alertmanager_status,
                }
            )
    if len(known) > 10_000:
        known.clear()
    return newest, changed


def _poll(
    sessions: sessionmaker[Session], since: datetime, known: dict[str, str], token_hash: str
) -> tuple[bool, datetime, list[dict[str, Any]]]:
    with sessions() as session:
        if not session_is_live(session, token_hash):
            return False, since, []
    return True, *alert_changes(sessions, since, known)


async def relay_alert_changes(
    sessions: sessionmaker[Session],
    emit: Emit,
    *,
    token_hash: str,
    interval: float = ALERT_POLL_SECONDS,
) -> None:
    """Emit an ``alert`` event whenever an episode changes state; return when the browser's
    session (stored under ``token_hash``) has ended or expired."""
    since = utcnow()
    known: dict[str, str] = {}
    while True:
        await anyio.sleep(interval)
        try:
            live, since, changed = await anyio.to_thread.run_sync(
                _poll, sessions, since, known, token_hash
            )
        except sa.exc.SQLAlchemyError as error:
            logger.warning("Cannot read alert changes for the UI (%s)", type(error).__name__)
            continue
        if not live:
            return
        for event in changed:
            await emit("alert", event)
