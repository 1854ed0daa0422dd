"""Work done after a response without holding it up: one daemon thread per queue.

The request path only appends to a deque: no thread hop, no lock handed over, no thread woken
(waking one per request costs more than the work). The thread drains what has accumulated
every ``interval`` seconds, in batches. A full queue refuses the item, and what is still queued
when the process dies is lost: only use this for work that something else makes good (the relay
re-sends unprocessed deliveries) or that is a trail rather than state (API call records).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Enqueue = Callable[[Sequence[int]], object]


class BackgroundQueue(Generic[T]):
    """Items handled in batches by ``handle`` on a daemon thread (started on first use)."""

    def __init__(
        self,
        name: str,
        handle: Callable[[list[T]], None],
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        interval: float = 0.05,
    ) -> None:
        self._name = name
        self._handle = handle
        self._items: deque[T] = deque()
        self._capacity = capacity
        self._batch_size = batch_size
        self._interval = interval
        self._wake = threading.Event()
        self._drained = threading.Condition()
        self._rounds = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def put(self, item: T) -> bool:
        """Queue ``item``; False (and nothing queued) when the queue is full or closed."""
        if self._closed or len(self._items) >= self._capacity:
            return False
        if self._thread is None:
            self._start()
        self._items.append(item)
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is handled; True if it was in time."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return not self._items
        with self._drained:
            # The round under way may have started before the last item came: wait for the next.
            target = self._rounds + 2
            self._wake.set()
            return self._drained.wait_for(lambda: self._rounds >= target, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Handle what is queued, then stop the thread."""
        self._closed = True
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._wake.set()
        thread.join(timeout)
        if self._items:
            logger.warning(
                "%s: %d items still queued at shutdown are lost", self._name, len(self._items)
            )

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            stopping = self._closed
            self._drain()
            with self._drained:
                self._rounds += 1
                self._drained.notify_all()
            if stopping:
                return

    def _drain(self) -> None:
        while self._items:
            batch: list[T] = []
            while self._items and len(batch) < self._batch_size:
                batch.append(self._items.popleft())
            try:
                self._handle(batch)
            except Exception:
                logger.exception("%s: could not handle %d items", self._name, len(batch))


class DeliveryHandoff:
    """Hands committed delivery ids to the task queue shortly after the response.

    What accumulated since the last round goes out in calls of at most ``MAX_IDS_PER_CALL`` ids.
    Lost hand-offs (queue full, task queue down, crash) cost only delay: the relay re-sends
    deliveries that stay unprocessed.
    """

    MAX_IDS_PER_CALL = 1000

    def __init__(self, enqueue: Enqueue, *, capacity: int = 10_000) -> None:
        self._enqueue = enqueue
        self._queue: BackgroundQueue[tuple[int, ...]] = BackgroundQueue(
            "poundcake-enqueue", self._send, capacity=capacity
        )

    def submit(self, delivery_ids: Sequence[int]) -> None:
        """Queue one request's delivery ids; never blocks."""
        if delivery_ids and not self._queue.put(tuple(delivery_ids)):
            logger.warning(
                "%d deliveries left to the relay: hand-off queue full", len(delivery_ids)
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted id went to the task queue."""
        return self._queue.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued, then stop."""
        self._queue.close(timeout)

    def _send(self, requests: list[tuple[int, ...]]) -> None:
        pending: list[int] = []
        for delivery_ids in requests:
            pending.extend(delivery_ids)
            if len(pending) >= self.MAX_IDS_PER_CALL:
                self._call(pending)
                pending = []
        if pending:
            self._call(pending)

    def _call(self, delivery_ids: list[int]) -> None:
        try:
            self._enqueue(delivery_ids)
        except Exception:
            logger.exception("Could not queue %d deliveries; the relay will", len(delivery_ids))
