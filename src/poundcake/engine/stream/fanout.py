"""One broker consumer per stream process, fanned out to every connected client.

A background thread with its own connection consumes the ``st2.execution`` exchange through an
exclusive, auto-deleted queue bound to ``#``, turns each message into client events (reading the
database once per message, and only for names some client wants), and offers them to the
subscribers whose query accepts them. Each subscriber has a bounded backlog: a client that falls
that far behind is dropped, so one slow reader never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.messaging import Consumer
from kombu.transport.base import Message

from poundcake.engine.messaging import EVENT_EXCHANGE, make_connection
from poundcake.engine.stream.events import Event, StreamQuery
from poundcake.ids import new_id

logger = logging.getLogger(__name__)

SUBSCRIBER_BACKLOG = 1000
_POLL_SECONDS = 0.5
# At most this many messages are resolved together (one database read).
_BATCH = 200
_RECONNECT_MAX_SECONDS = 10.0


class EventResolver(Protocol):
    """Turns a broker message into the events clients receive."""

    def resolve_many(
        self, messages: Sequence[tuple[str, Any]], wanted: Callable[[str], bool]
    ) -> list[list[Event]]: ...


class Subscription:
    """One client's backlog, filled by the fan-out thread and read on the client's event loop."""

    def __init__(self, query: StreamQuery, loop: asyncio.AbstractEventLoop, backlog: int) -> None:
        self.query = query
        self._loop = loop
        self._backlog = backlog
        self._items: deque[Event] = deque()
        self._lock = threading.Lock()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._overflowed = False

    @property
    def closed(self) -> bool:
        """Tell whether the subscription ended (dropped for falling behind, or stopped)."""
        return self._closed

    @property
    def overflowed(self) -> bool:
        """Tell whether the client fell a full backlog behind and was dropped."""
        return self._overflowed

    def offer(self, event: Event) -> bool:
        """Queue ``event``; return False when the subscription is closed or just overflowed."""
        with self._lock:
            if self._closed:
                return False
            if len(self._items) >= self._backlog:
                self._closed = self._overflowed = True
                self._items.clear()
            else:
                self._items.append(event)
            accepted = not self._closed
        self._wake()
        return accepted

    def close(self) -> None:
        """End the subscription; the client sees it as closed once its backlog is read."""
        with self._lock:
            self._closed = True
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the client's loop is gone: nobody to wake
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def next(self, timeout: float) -> Event | None:
        """The next event, or None after ``timeout`` seconds without one or once closed."""
        deadline = self._loop.time() + timeout
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
                if self._closed:
                    return None
                self._wakeup.clear()
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)


class EventFanout:
    """The stream process's consumer and its subscribers; safe to share between threads."""

    def __init__(
        self, messaging_url: str, resolver: EventResolver, *, backlog: int = SUBSCRIBER_BACKLOG
    ) -> None:
        self._url = messaging_url
        self._resolver = resolver
        self._backlog = backlog
        self._subscribers: list[Subscription] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Messages taken from the broker and not yet dispatched (the consuming thread's own).
        self._received: list[tuple[str, Any]] = []

    # --- subscribers, on the clients' side ----------------------------------------------------

    def subscribe(self, query: StreamQuery, loop: asyncio.AbstractEventLoop) -> Subscription:
        """Start collecting events for one client."""
        subscription = Subscription(query, loop, self._backlog)
        with self._lock:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop collecting events for a client."""
        subscription.close()
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    @property
    def subscriber_count(self) -> int:
        """How many clients are subscribed."""
        with self._lock:
            return len(self._subscribers)

    # --- dispatch, in the consuming thread ----------------------------------------------------

    def dispatch(self, name: str, body: Any) -> None:
        """Offer the events a message becomes to every subscriber that accepts them."""
        self.dispatch_many([(name, body)])

    def dispatch_many(self, messages: Sequence[tuple[str, Any]]) -> None:
        """Offer the events each message becomes, in order, to every subscriber that accepts
        them (the messages taken together read the database once)."""
        with self._lock:
            subscribers = list(self._subscribers)
        if not subscribers:
            return
        kept = []
        for name, body in messages:
            if "\n" in name or "\r" in name:
                logger.warning("Ignoring an event whose name has a line break: %r", name)
            else:
                kept.append((name, body))

        def wanted(event_name: str) -> bool:
            return any(subscriber.query.wants_name(event_name) for subscriber in subscribers)

        for events in self._resolver.resolve_many(kept, wanted):
            for event in events:
                for subscriber in subscribers:
                    if subscriber.query.accepts(event) and not subscriber.offer(event):
                        self._forget(subscriber)

    def _forget(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription not in self._subscribers:
                return
            self._subscribers.remove(subscription)
        if subscription.overflowed:
            logger.warning("Dropped a stream client that fell %s events behind", self._backlog)

    # --- the consuming thread -----------------------------------------------------------------

    def start(self) -> None:
        """Start consuming in a background thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="stream-fanout", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the queue is bound and consumed; tell whether it is."""
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop consuming and close every subscription."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
        for subscription in subscribers:
            subscription.close()

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                with make_connection(self._url, confirm=False) as connection:
                    self._consume(connection)
                delay = 0.5
            except Exception:
                logger.exception("The event stream lost its broker connection; reconnecting")
                self._stop.wait(delay)
                delay = min(delay * 2, _RECONNECT_MAX_SECONDS)
            finally:
                self._ready.clear()

    def _consume(self, connection: Connection) -> None:
        queue = Queue(
            f"st2.stream.{new_id()}",
            exchange=EVENT_EXCHANGE,
            routing_key="#",
            exclusive=True,
            auto_delete=True,
            durable=False,
        )
        consumer = Consumer(
            connection.channel(),
            queues=[queue],
            callbacks=[self._on_message],
            accept=["json"],
            no_ack=True,
        )
        with consumer:
            logger.info("Event stream consuming %s", queue.name)
            self._ready.set()
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    connection.drain_events(timeout=_POLL_SECONDS)
                    # Then whatever else is already here, up to a batch, dispatched together.
                    while len(self._received) < _BATCH:
                        connection.drain_events(timeout=0)
                self._dispatch_received()
                connection.heartbeat_check()

    def _on_message(self, body: Any, message: Message) -> None:
        self._received.append((str(message.delivery_info.get("routing_key", "")), body))

    def _dispatch_received(self) -> None:
        received, self._received = self._received, []
        if not received:
            return
        try:
            self.dispatch_many(received)
        except Exception:
            names = sorted({name for name, _ in received})
            logger.exception("Could not hand events %s to the stream's clients", ", ".join(names))
