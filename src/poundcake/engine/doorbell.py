"""Rounds of database work that a doorbell message starts at once, with polling as the fallback.

The engine's database is its queue; a message on a durable queue (a doorbell) carries no state
and only says "look now". :func:`run_rounds` runs ``work`` once per round: again as soon as a
doorbell rings, else after ``poll_interval``. Doorbells that arrive during a round are taken
together and ring once. With the broker unreachable it polls alone for ``RECONNECT_AFTER``
seconds, then connects again, so a broker outage costs latency and nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from amqp.exceptions import AMQPError  # type: ignore[import-untyped]
from kombu.connection import Connection
from kombu.entity import Queue
from kombu.exceptions import KombuError
from kombu.messaging import Consumer
from kombu.transport.base import Message

from poundcake.engine.messaging import make_connection

logger = logging.getLogger(__name__)

BROKER_ERRORS = (OSError, KombuError, AMQPError)
RECONNECT_AFTER = 5.0
PREFETCH = 500


def run_rounds(
    *,
    url: str,
    queue: Queue,
    work: Callable[[], None],
    poll_interval: float,
    stop: threading.Event,
) -> None:
    """Run ``work`` in rounds until ``stop`` is set: on each doorbell of ``queue``, and at
    least every ``poll_interval`` seconds."""
    rung = threading.Event()

    def on_doorbell(_body: dict[str, Any], message: Message) -> None:
        message.ack()
        rung.set()

    while not stop.is_set():
        try:
            with make_connection(url) as connection:
                consumer = Consumer(
                    connection.channel(), queues=[queue], callbacks=[on_doorbell], accept=["json"]
                )
                consumer.qos(prefetch_count=PREFETCH)
                with consumer:
                    logger.info("Consuming %s", queue.name)
                    _rounds(connection, rung, work, poll_interval, stop)
        except BROKER_ERRORS:
            logger.exception(
                "The broker is unavailable; polling the database only for %.0f s", RECONNECT_AFTER
            )
            until = time.monotonic() + RECONNECT_AFTER
            while not stop.is_set() and time.monotonic() < until:
                work()
                stop.wait(poll_interval)


def _rounds(
    connection: Connection,
    rung: threading.Event,
    work: Callable[[], None],
    poll_interval: float,
    stop: threading.Event,
) -> None:
    while not stop.is_set():
        rung.clear()
        work()
        deadline = time.monotonic() + poll_interval
        while not rung.is_set() and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            connection.heartbeat_check()
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=min(remaining, 0.5))
        # Take every doorbell already delivered before the next round.
        with contextlib.suppress(TimeoutError, BlockingIOError):
            while True:
                connection.drain_events(timeout=0)
