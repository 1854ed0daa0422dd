"""The engine's event stream (``ST2_STREAM_URL``, server-sent events) as PoundCake reads it.

Two readers share this: the beat's follower (:mod:`poundcake.remediation.tracking.stream`,
blocking) and the web UI's live updates (:mod:`poundcake.remediation.ui.events`, async). Both
send PoundCake's engine API key, refuse anything but a 200, split the body into events with
:class:`EventSplitter` and reconnect after :func:`reconnect_delay`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import httpx

from poundcake.config import Settings
from poundcake.remediation.engine_api import API_KEY_HEADER, api_key

RECONNECT_SECONDS = (1.0, 2.0, 5.0, 10.0)


class StreamTarget(NamedTuple):
    """Where and how to follow the engine's stream: ``client.stream("GET", *target)``."""

    url: str
    params: dict[str, str]
    headers: dict[str, str]


def stream_request(settings: Settings, events: str) -> StreamTarget:
    """What follows the engine's ``events`` with PoundCake's key."""
    key = api_key(settings)
    headers = {API_KEY_HEADER: key} if key else {}
    return StreamTarget(settings.st2_stream_url, {"events": events}, headers)


def check_stream(response: httpx.Response) -> None:
    """Raise :class:`httpx.HTTPStatusError` unless the stream answered 200."""
    if response.status_code != 200:
        raise httpx.HTTPStatusError(
            f"the stream answered {response.status_code}",
            request=response.request,
            response=response,
        )


def reconnect_delay(attempt: int) -> float:
    """Seconds to wait before reconnection number ``attempt + 1``."""
    return RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]


class EventSplitter:
    """Turns the lines of a ``text/event-stream`` body into (event, data) pairs, one at a time."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        """Take one line; the event it completes, if any."""
        if line.startswith("event:"):
            self._event = line[6:].strip()
        elif line.startswith("data:"):
            self._data.append(line[5:].lstrip())
        elif not line:
            return self.flush()
        return None

    def flush(self) -> tuple[str, str] | None:
        """The event under way, if it has data; starts the next one."""
        found = (self._event, "\n".join(self._data)) if self._data else None
        self._event, self._data = "message", []
        return found


def server_sent_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from the lines of a ``text/event-stream`` body."""
    splitter = EventSplitter()
    for line in lines:
        found = splitter.feed(line)
        if found is not None:
            yield found
    last = splitter.flush()
    if last is not None:
        yield last
