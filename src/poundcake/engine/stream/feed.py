"""One client's stream: a heartbeat first, then its events as frames, until its end event.

A client that names an end execution first catches up: its output so far, and, when the
execution already completed before the stream opened (``st2 run --tail`` of a quick action,
``st2 pack install``), its final ``st2.execution__update`` at once, then the stream closes. The
output is read again before the final update is sent, so none is lost however late the broker
delivered it; output already sent is never sent twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from poundcake.engine.stream.events import (
    EXECUTION_PREFIX,
    HEARTBEAT,
    OUTPUT_CREATE,
    OUTPUT_PREFIX,
    Event,
    StreamQuery,
)
from poundcake.engine.stream.fanout import Subscription

logger = logging.getLogger(__name__)


class Subscriptions(Protocol):
    """Where a feed gets its events (the process's :class:`EventFanout`)."""

    def subscribe(self, query: StreamQuery, loop: asyncio.AbstractEventLoop) -> Subscription: ...

    def unsubscribe(self, subscription: Subscription) -> None: ...


class ExecutionReader(Protocol):
    """What a feed reads from the database."""

    def current_execution(self, execution_id: str) -> Event | None: ...

    def stored_output(self, execution_id: str) -> list[Event]: ...


class EventFeed:
    """The frames of one client's stream."""

    def __init__(
        self,
        subscriptions: Subscriptions,
        reader: ExecutionReader,
        query: StreamQuery,
        *,
        heartbeat: float,
    ) -> None:
        self._subscriptions = subscriptions
        self._reader = reader
        self._query = query
        self._heartbeat = heartbeat
        self._sent_output: set[str] = set()

    async def frames(self) -> AsyncIterator[bytes]:
        """Heartbeat, catch-up, then live events and a heartbeat whenever the stream is quiet."""
        subscription = self._subscriptions.subscribe(self._query, asyncio.get_running_loop())
        try:
            yield HEARTBEAT
            ended = False
            if self._query.end.is_set:
                frames, ended = await self._catch_up()
                for frame in frames:
                    yield frame
            while not ended:
                event = await subscription.next(self._heartbeat)
                if event is None:
                    if subscription.closed:
                        logger.info("Closing a stream whose subscription ended")
                        return
                    yield HEARTBEAT
                    continue
                frames, ended = await self._handle(event)
                for frame in frames:
                    yield frame
        finally:
            self._subscriptions.unsubscribe(subscription)

    async def _catch_up(self) -> tuple[list[bytes], bool]:
        """The end execution's output so far, and its final update if it already completed."""
        end = self._query.end
        assert end.execution_id is not None and end.event is not None
        # The execution is read before its output: once it is complete, all output is stored.
        current = await asyncio.to_thread(self._reader.current_execution, end.execution_id)
        frames = await self._unsent_output()
        if current is None or not end.event.startswith(EXECUTION_PREFIX):
            return frames, False
        final = Event(end.event, current.body)
        if not end.reached_by(final):
            return frames, False
        if self._query.filter.matches(final):
            frames.append(final.frame)
        return frames, True

    async def _handle(self, event: Event) -> tuple[list[bytes], bool]:
        if self._already_sent(event):
            return [], False
        ended = self._query.end.reached_by(event)
        frames = await self._unsent_output() if ended else []
        if self._query.filter.matches(event):
            frames.append(event.frame)
        return frames, ended

    def _already_sent(self, event: Event) -> bool:
        """Note output of the end execution; tell whether it was sent already."""
        if not event.name.startswith(OUTPUT_PREFIX):
            return False
        if event.execution_id is None or event.execution_id != self._query.end.execution_id:
            return False
        output_id = str(event.body.get("id")) if isinstance(event.body, Mapping) else ""
        if output_id in self._sent_output:
            return True
        self._sent_output.add(output_id)
        return False

    async def _unsent_output(self) -> list[bytes]:
        """Stored output of the end execution that this client wants and has not had."""
        execution_id = self._query.end.execution_id
        if execution_id is None or not self._query.filter.wants_name(OUTPUT_CREATE):
            return []
        stored = await asyncio.to_thread(self._reader.stored_output, execution_id)
        return [
            event.frame
            for event in stored
            if self._query.filter.matches(event) and not self._already_sent(event)
        ]
