"""PoundCake's Redis transport (:mod:`poundcake.remediation.tasks.broker`) on the real Redis.

When Celery loses the broker it calls ``connection.collect()``, which can detach the transport
(``transport.client = None``) while the channel still holds unacknowledged messages, and then
``connection.close()``, which restores them. kombu's own transport fails there with
``AttributeError: ... 'hostname'`` (Celery's "Unrecoverable error"); PoundCake's restores them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kombu import Connection, Exchange, Queue

from poundcake.remediation.tasks.broker import TRANSPORT
from tests.integration.support.redis_db import claim_redis_database, redis_url

pytestmark = pytest.mark.integration


@pytest.fixture
def url() -> Iterator[str]:
    with claim_redis_database() as database:
        yield redis_url(database)


def hold_one_unacknowledged(connection: Connection, queue: Queue) -> None:
    """Publish a message on ``queue`` and take it without acknowledging it."""
    channel = connection.default_channel
    bound = queue(channel)
    bound.declare()
    producer = connection.Producer(channel)
    producer.publish({"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key)
    message = bound.get(no_ack=False)
    assert message is not None and message.payload == {"n": 1}
    assert bound.get(no_ack=False) is None


def detach_and_close(connection: Connection) -> None:
    """What Celery's consumer leaves behind when ``collect()`` could not close the channel:
    the transport detached from its connection; then the channel is closed."""
    channel = connection.default_channel
    connection.transport.client = None
    channel.close()


def test_a_detached_channel_restores_its_unacknowledged_messages(url: str) -> None:
    queue = Queue("transport-test", Exchange("transport-test"), routing_key="transport-test")
    with Connection(url, transport=TRANSPORT) as connection:
        hold_one_unacknowledged(connection, queue)
        detach_and_close(connection)

    with Connection(url) as connection:
        restored = queue(connection.default_channel).get(no_ack=True)
        assert restored is not None and restored.payload == {"n": 1}


def test_kombus_own_transport_fails_where_ours_restores(url: str) -> None:
    """The failure this transport exists for, so this file fails if kombu changes."""
    queue = Queue("transport-stock", Exchange("transport-stock"), routing_key="transport-stock")
    connection = Connection(url)
    hold_one_unacknowledged(connection, queue)
    with pytest.raises(AttributeError, match="hostname"):
        detach_and_close(connection)
