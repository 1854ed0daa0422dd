"""PoundCake's Redis transport: kombu's, made to survive losing Redis with messages unacknowledged.

Celery 5.x (5.7 here) handles a lost broker connection in
``Consumer.on_connection_error_after_connected`` by calling ``connection.collect()`` and then
``connection.close()``. For the Redis transport (which has no ``_collect``) ``collect()`` first
tries to close the default channel; while the channel is in a poll that close fails with a
connection error, which ``maybe_close_channel`` swallows, so the channel stays open with its
unacknowledged messages. ``collect()`` then detaches the transport from its connection
(``transport.client = None``). The following ``close()`` closes the channel again: kombu drops the
channel's connection pool and restores the unacknowledged messages through a new pool, whose
parameters it reads from ``transport.client``: ``AttributeError: 'NoneType' object has no
attribute 'hostname'``. That is not a connection error, so Celery reports an "Unrecoverable
error" and the worker stops consuming and shuts down.

:class:`Channel` remembers the parameters of the last pool it built and uses them when the
transport has been detached. The restore then reaches for the real server: with Redis still gone
it fails with a connection error, which kombu and Celery expect, and the worker reconnects (the
messages stay in Redis' unacked hash, restored after the visibility timeout; the outbox relay
hands the deliveries out again sooner anyway); with Redis back they are restored at once.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

#: The ``broker_transport`` of Celery apps whose broker URL is ``redis://`` or ``rediss://``.
TRANSPORT = "poundcake.remediation.tasks.broker:Transport"


class Channel(kombu_redis.Channel):
    """kombu's Redis channel that can still build a pool after ``Connection.collect()``."""

    _poundcake_connparams: dict[bool, dict[str, Any]] | None = None

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        remembered = self._poundcake_connparams
        if self.connection.client is None:
            if remembered is None or asynchronous not in remembered:
                raise RedisConnectionError(
                    "the broker connection was closed before this channel connected"
                )
            logger.info("Broker connection detached; using its last parameters to restore messages")
            return dict(remembered[asynchronous])
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]
        if remembered is None:
            remembered = self._poundcake_connparams = {}
        remembered[asynchronous] = dict(params)
        return params


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
