"""How many messages wait in a broker's queues, from a passive ``queue_declare`` through kombu,
which works the same on RabbitMQ, Redis and the embedded SQLite transport. A queue that does not
exist yet holds nothing. Used by the status commands and poundcake-api's metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from amqp.exceptions import AMQPError  # type: ignore[import-untyped]
from amqp.exceptions import NotFound as AmqpNotFound
from kombu.connection import Connection
from kombu.exceptions import ChannelError, KombuError

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 3.0
_BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError, KombuError, AMQPError, TimeoutError)


@dataclass(frozen=True)
class QueueDepth:
    """Messages waiting in one broker queue."""

    queue: str
    messages: int


def broker_location(url: str) -> str:
    """The broker URL with its password masked (``amqp://guest:**@host:5672/vhost``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:**@{host}"))


def queue_depths(
    url: str, queues: Sequence[str], timeout: float = BROKER_TIMEOUT_SECONDS
) -> list[QueueDepth] | None:
    """How many messages wait in each of ``queues``; None when the broker cannot be reached."""
    connection = Connection(url, connect_timeout=timeout)
    try:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        depths = []
        for queue in queues:
            channel = connection.channel()
            try:
                _name, messages, _consumers = channel.queue_declare(queue=queue, passive=True)
            except (ChannelError, AmqpNotFound):
                messages = 0
            finally:
                _close_quietly(channel)
            depths.append(QueueDepth(queue, int(messages)))
        return depths
    except _BROKER_ERRORS as error:
        logger.debug("Broker unreachable for queue depths (%s)", type(error).__name__)
        return None
    finally:
        connection.release()


def _close_quietly(channel: object) -> None:
    try:
        channel.close()  # type: ignore[attr-defined]
    except _BROKER_ERRORS:
        logger.debug("Closing a status channel failed", exc_info=True)


def celery_queue_depth(url: str, queue: str) -> QueueDepth | None:
    """Messages waiting in the workers' Celery ``queue``; None when the broker is down."""
    found = queue_depths(url, [queue])
    return found[0] if found else None
