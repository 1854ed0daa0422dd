"""What ``st2ctl status`` and ``poundcake status`` report besides the processes: the database,
the broker and how much work waits in the queues.

Each probe answers a :class:`Probe` (a name, whether it is fine, one line of detail without
secrets, whether it is required); queue depths come from a passive ``queue_declare`` through
kombu, which works the same on RabbitMQ, Redis and the embedded SQLite transport. A queue that
does not exist yet holds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
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


@dataclass(frozen=True)
class Probe:
    """One line of a status report."""

    name: str
    ok: bool
    detail: str
    required: bool = True

    def line(self) -> str:
        """``name: detail`` with a marker when a required part is down."""
        marker = "" if self.ok or not self.required else " (required)"
        return f"{self.name}: {self.detail}{marker}"


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


def database_probe(name: str, engine: sa.Engine, where: str) -> Probe:
    """Whether ``engine`` answers ``SELECT 1``."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        return Probe(name, False, f"unreachable at {where} ({type(error).__name__})")
    return Probe(name, True, f"ok ({where})")


def broker_probe(
    name: str, url: str, queues: Sequence[str], *, required: bool = True
) -> list[Probe]:
    """Whether the broker at ``url`` answers, and one line per queue with its depth."""
    where = broker_location(url)
    depths = queue_depths(url, queues)
    if depths is None:
        return [Probe(name, False, f"unreachable at {where}", required=required)]
    lines = [Probe(name, True, f"ok ({where})", required=required)]
    lines.extend(
        Probe(f"queue {depth.queue}", True, f"{depth.messages} message(s) waiting", False)
        for depth in depths
    )
    return lines


def count_probe(name: str, engine: sa.Engine, query: sa.Select[Any], what: str) -> Probe:
    """One count from the database, e.g. the outbox of unprocessed deliveries."""
    try:
        with engine.connect() as connection:
            found = connection.scalar(query)
    except sa.exc.SQLAlchemyError as error:
        return Probe(name, False, f"unknown ({type(error).__name__})", required=False)
    return Probe(name, True, f"{int(found or 0)} {what}", required=False)


def all_required_up(probes: Sequence[Probe]) -> bool:
    """True when no required probe failed."""
    return all(probe.ok for probe in probes if probe.required)
