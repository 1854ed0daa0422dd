"""The engine's messaging over RabbitMQ (kombu), or a local transport in the embedded default.

Work flows through durable queues; messages are doorbells that name a live action, and the
database is the record, so a lost message delays work (the scheduler's sweep finds it) but never
loses it:

* ``st2.liveaction.status`` (topic): ``requested`` goes to the scheduler's queue;
* ``st2.actionrunner`` (direct): ``work`` goes to the action runners' shared queue;
* ``st2.execution`` (topic): event notifications (``st2.execution__update`` ...) for the stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.messaging import Producer

logger = logging.getLogger(__name__)

LIVEACTION_EXCHANGE = Exchange("st2.liveaction.status", type="topic", durable=True)
ACTIONRUNNER_EXCHANGE = Exchange("st2.actionrunner", type="direct", durable=True)
EVENT_EXCHANGE = Exchange("st2.execution", type="topic", durable=True)

SCHEDULER_QUEUE = Queue(
    "st2.scheduler.requested", exchange=LIVEACTION_EXCHANGE, routing_key="requested", durable=True
)
RUNNER_QUEUE = Queue(
    "st2.actionrunner.work", exchange=ACTIONRUNNER_EXCHANGE, routing_key="work", durable=True
)

_RETRY_POLICY = {"max_retries": 5, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 3}


def make_connection(url: str) -> Connection:
    """Open a kombu connection for the engine's broker URL."""
    return Connection(url, transport_options={"confirm_publish": True}, heartbeat=30)


class Publisher:
    """Publishes engine messages; safe to share between threads."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._producer: Producer | None = None

    def _ensure(self) -> Producer:
        if self._producer is None:
            self._connection = make_connection(self._url)
            self._producer = Producer(self._connection.channel(), serializer="json")
        return self._producer

    def _publish(
        self, body: Mapping[str, Any], *, exchange: Exchange, routing_key: str, declare: list[Any]
    ) -> None:
        with self._lock:
            producer = self._ensure()
            assert self._connection is not None
            publish = self._connection.ensure(producer, producer.publish, **_RETRY_POLICY)
            publish(
                dict(body),
                exchange=exchange,
                routing_key=routing_key,
                declare=declare,
                delivery_mode=2,
            )

    def requested(self, liveaction_id: str, execution_id: str) -> None:
        """Tell the scheduler a live action was requested."""
        body = {"liveaction_id": liveaction_id, "execution_id": execution_id}
        self._publish(
            body, exchange=LIVEACTION_EXCHANGE, routing_key="requested", declare=[SCHEDULER_QUEUE]
        )

    def work(self, liveaction_id: str, execution_id: str) -> None:
        """Hand a scheduled live action to the action runners."""
        body = {"liveaction_id": liveaction_id, "execution_id": execution_id}
        self._publish(
            body, exchange=ACTIONRUNNER_EXCHANGE, routing_key="work", declare=[RUNNER_QUEUE]
        )

    def event(self, name: str, body: Mapping[str, Any]) -> None:
        """Announce an event such as ``st2.execution__update`` (routing key = the name)."""
        self._publish(body, exchange=EVENT_EXCHANGE, routing_key=name, declare=[EVENT_EXCHANGE])

    def close(self) -> None:
        """Release the connection."""
        with self._lock:
            if self._connection is not None:
                self._connection.release()
            self._connection = None
            self._producer = None
