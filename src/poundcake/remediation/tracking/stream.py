"""Following remediations through the engine's event stream, so results arrive at once.

``watch_executions`` reads ``ST2_STREAM_URL`` (server-sent events) with PoundCake's engine API
key and calls ``on_alert(alert_id)`` whenever an execution started for an alert (its context
carries ``alert_id``) finishes. The beat's periodic pass stays the fallback: a stream that
drops or an engine that restarts loses nothing, it only delays until the next pass.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from poundcake.config import Settings
from poundcake.remediation.engine_client import api_key

logger = logging.getLogger(__name__)

EVENTS = "st2.execution__update"
FINISHED = frozenset({"succeeded", "failed", "timeout", "canceled", "abandoned"})
RECONNECT_SECONDS = (1.0, 2.0, 5.0, 10.0)


def server_sent_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from the lines of a ``text/event-stream`` body."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield event, "\n".join(data)


def alert_of(document: Any) -> str | None:
    """The alert a finished execution belongs to (its context's ``alert_id``), if any.

    Only finished executions count: they are what moves an alert on (the periodic pass sees
    the steps in between), and following on every status change would cost the engine's API
    several calls per change.
    """
    if not isinstance(document, dict) or document.get("status") not in FINISHED:
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
        key = api_key(settings)
        headers = {"St2-Api-Key": key} if key else {}
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10.0, read=60.0)) as client,
                client.stream(
                    "GET", settings.st2_stream_url, params={"events": EVENTS}, headers=headers
                ) as response,
            ):
                if response.status_code != 200:
                    raise httpx.HTTPStatusError(
                        f"the stream answered {response.status_code}",
                        request=response.request,
                        response=response,
                    )
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
            delay = RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]
            level = logging.WARNING if attempt == 0 else logging.DEBUG
            logger.log(level, "The engine stream is unavailable (%s); polling meanwhile", error)
            attempt += 1
            stop.wait(delay)
