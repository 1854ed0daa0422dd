"""Following remediations through the engine's event stream, so results arrive at once.

``watch_executions`` reads ``ST2_STREAM_URL`` (server-sent events) with PoundCake's engine API
key and calls ``on_alert(alert_id)`` whenever an execution started for an alert (its context
carries ``alert_id``) finishes. The beat's periodic pass stays the fallback: a stream that
drops or an engine that restarts loses nothing, it only delays until the next pass; an engine
whose RBAC refuses the stream to PoundCake's key (it serves administrators only) leaves polling
alone, said once in the log.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import httpx

from poundcake.config import Settings
from poundcake.engine.public import COMPLETED_STATUSES
from poundcake.remediation.engine_stream import (
    check_stream,
    reconnect_delay,
    server_sent_events,
    stream_request,
)

logger = logging.getLogger(__name__)

EVENTS = "st2.execution__update"
# With the engine's RBAC on, st2stream serves administrators only: PoundCake's own role is
# refused, so it follows by polling and asks the stream again now and then (a key that becomes
# an administrator's is followed again), logging the refusal once.
REFUSED_RETRY_SECONDS = 60.0
REFUSED_MESSAGE = (
    "The engine refuses its stream %s to PoundCake's key (403: with RBAC on the stream serves "
    "administrators only); following remediations by polling"
)


def refused_by_rbac(error: httpx.HTTPError) -> bool:
    """Whether the stream refused the key (403) rather than being down."""
    return isinstance(error, httpx.HTTPStatusError) and error.response.status_code == 403


def alert_of(document: Any) -> str | None:
    """The alert a finished execution belongs to (its context's ``alert_id``), if any.

    Only finished executions count: they are what moves an alert on (the periodic pass sees
    the steps in between), and following on every status change would cost the engine's API
    several calls per change.
    """
    if not isinstance(document, dict) or document.get("status") not in COMPLETED_STATUSES:
        return None
    context = document.get("context")
    if isinstance(context, dict):
        alert_id = context.get("alert_id") or (context.get("parent") or {}).get("alert_id")
        if isinstance(alert_id, str) and alert_id:
            return alert_id
    return None


def watch_executions(
    settings: Settings, on_alert: Callable[[str], None], stop: threading.Event
) -> None:
    """Call ``on_alert`` for each execution event of an alert until ``stop`` is set."""
    attempt = 0
    while not stop.is_set():
        target = stream_request(settings, EVENTS)
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10.0, read=60.0)) as client,
                client.stream(
                    "GET", target.url, params=target.params, headers=target.headers
                ) as response,
            ):
                check_stream(response)
                logger.info("Following remediations through %s", settings.st2_stream_url)
                attempt = 0
                for _event, data in server_sent_events(response.iter_lines()):
                    if stop.is_set():
                        return
                    try:
                        alert_id = alert_of(json.loads(data))
                    except ValueError:
                        continue
                    if alert_id:
                        on_alert(alert_id)
        except httpx.HTTPError as error:
            refused = refused_by_rbac(error)
            delay = REFUSED_RETRY_SECONDS if refused else reconnect_delay(attempt)
            level = logging.WARNING if attempt == 0 else logging.DEBUG
            if refused:
                logger.log(level, REFUSED_MESSAGE, settings.st2_stream_url)
            else:
                logger.log(level, "The engine stream is unavailable (%s); polling meanwhile", error)
            attempt += 1
            stop.wait(delay)
