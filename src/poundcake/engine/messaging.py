"""The engine's messaging over RabbitMQ (kombu), or a local transport in the embedded default.

Work flows through durable queues; messages are doorbells that name a live action, and the
database is the record, so a lost message delays work (the scheduler's sweep finds it) but never
loses it:

* ``st2.liveaction.status`` (topic): ``requested`` goes to the scheduler's queue;
* ``st2.actionrunner`` (direct): ``work`` goes to the action runners' shared queue, ``workflow``
  to their workflow queue, ``orquesta`` to the workflow engines';
* ``st2.execution`` (topic): event notifications (``st2.execution__update`` ...) for the stream;
  ``st2.trigger_instance__create`` also rings the rules engine's queue, and every
  ``st2.execution__update`` the workflow engines' (a task's action changed, or a workflow was
  asked to pause, resume or cancel) and the notifiers' (an execution may have ended with
  something for them to do).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from amqp.exceptions import AMQPError  # type: ignore[import-untyped]
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.exceptions import KombuError
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
# Workflows (action-chain, steps) wait on their children; they get a queue and a thread pool of
# their own in every runner so that waiting workflows never take the threads their steps need.
WORKFLOW_QUEUE = Queue(
    "st2.actionrunner.workflows",
    exchange=ACTIONRUNNER_EXCHANGE,
    routing_key="workflow",
    durable=True,
)

# Orquesta workflows to start go to the workflow engines (st2workflowengine), which conduct them.
WORKFLOW_ENGINE_QUEUE = Queue(
    "st2.workflow.work",
    exchange=ACTIONRUNNER_EXCHANGE,
    routing_key="orquesta",
    durable=True,
)
# The workflow engines' doorbell for changes of executions (their tasks' and their own).
WORKFLOW_UPDATES_QUEUE = Queue(
    "st2.workflow.execution_updates",
    exchange=EVENT_EXCHANGE,
    routing_key="st2.execution__update",
    durable=True,
)

# The rules engine's doorbell: a durable queue on the event exchange's trigger instance events.
# Doorbells carry no state; the rules engine takes pending instances from the database.
RULES_ENGINE_QUEUE = Queue(
    "st2.trigger_instances_dispatch.rules_engine",
    exchange=EVENT_EXCHANGE,
    routing_key="st2.trigger_instance__create",
    durable=True,
)

# The notifiers' doorbell: every execution change, since one that ends may have notify settings
# or a post-run policy. Doorbells pile up while no notifier runs, so the queue keeps the newest
# few only (one is as good as many).
NOTIFIER_QUEUE = Queue(
    "st2.notifier.execution_updates",
    exchange=EVENT_EXCHANGE,
    routing_key="st2.execution__update",
    durable=True,
    queue_arguments={"x-max-length": 100},
)

ORQUESTA_RUNNER_TYPE = "orquesta"

# Queues that events ring (the rules engine's, the workflow engines' and the notifiers').
DOORBELLS = (RULES_ENGINE_QUEUE, WORKFLOW_UPDATES_QUEUE, NOTIFIER_QUEUE)

_RETRY_POLICY = {"max_retries": 5, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 3}


def make_connection(url: str, *, confirm: bool = True) -> Connection:
    """Open a kombu connection for the engine's broker URL (publisher confirms on AMQP)."""
    if url.startswith(("amqp://", "amqps://", "pyamqp://")):
        return Connection(url, transport_options={"confirm_publish": confirm}, heartbeat=30)
    return Connection(url)


class _Channel:
    """One connection and producer, used under a lock."""

    def __init__(self, url: str, confirm: bool) -> None:
        self.url = url
        self.confirm = confirm
        self.lock = threading.Lock()
        self.connection: Connection | None = None
        self.producer: Producer | None = None
        self.declared: set[str] = set()

    def publish(
        self, body: Mapping[str, Any], exchange: Exchange, routing_key: str, declare: list[Any]
    ) -> None:
        with self.lock:
            if self.producer is None or self.connection is None:
                self.connection = make_connection(self.url, confirm=self.confirm)
                self.producer = Producer(self.connection.channel(), serializer="json")
                self.declared = set()
            key = f"{exchange.name}:{routing_key}"
            needed = [] if key in self.declared else declare
            publish = self.connection.ensure(self.producer, self.producer.publish, **_RETRY_POLICY)
            publish(
                dict(body),
                exchange=exchange,
                routing_key=routing_key,
                declare=needed,
                delivery_mode=2 if self.confirm else 1,
            )
            self.declared.add(key)

    def close(self) -> None:
        with self.lock:
            if self.connection is not None:
                self.connection.release()
            self.connection = None
            self.producer = None


class Publisher:
    """Publishes engine messages; safe to share between threads.

    Work and requested messages are persistent and confirmed by the broker; events are
    notifications (the database holds the state), sent without waiting for confirmation.
    """

    def __init__(self, url: str) -> None:
        self._work = _Channel(url, confirm=True)
        self._events = _Channel(url, confirm=False)
        # A local transport (the embedded default) routes by bindings each process knows of:
        # its publishers declare the doorbell queues their events ring, so they are delivered.
        self._local = not url.startswith(("amqp://", "amqps://", "pyamqp://"))

    def _publish(
        self, body: Mapping[str, Any], *, exchange: Exchange, routing_key: str, declare: list[Any]
    ) -> None:
        channel = self._events if exchange is EVENT_EXCHANGE else self._work
        channel.publish(body, exchange, routing_key, declare)

    def requested(self, liveaction_id: str, execution_id: str) -> None:
        """Tell the scheduler a live action was requested."""
        body = {"liveaction_id": liveaction_id, "execution_id": execution_id}
        self._publish(
            body, exchange=LIVEACTION_EXCHANGE, routing_key="requested", declare=[SCHEDULER_QUEUE]
        )

    def requested_many(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Tell the scheduler about many requested live actions in one message (one broker
        confirmation for a whole batch): ``{"liveactions": [{liveaction_id, execution_id}]}``."""
        body = {
            "liveactions": [
                {"liveaction_id": liveaction_id, "execution_id": execution_id}
                for liveaction_id, execution_id in pairs
            ]
        }
        self._publish(
            body, exchange=LIVEACTION_EXCHANGE, routing_key="requested", declare=[SCHEDULER_QUEUE]
        )

    def work(
        self,
        liveaction_id: str,
        execution_id: str,
        *,
        workflow: bool = False,
        runner_type: str | None = None,
    ) -> None:
        """Hand a scheduled live action to the action runners (workflows to their own queue,
        Orquesta workflows to the workflow engines)."""
        body = {"liveaction_id": liveaction_id, "execution_id": execution_id}
        queue = RUNNER_QUEUE
        if runner_type == ORQUESTA_RUNNER_TYPE:
            queue = WORKFLOW_ENGINE_QUEUE
        elif workflow:
            queue = WORKFLOW_QUEUE
        self._publish(
            body,
            exchange=ACTIONRUNNER_EXCHANGE,
            routing_key=str(queue.routing_key),
            declare=[queue],
        )

    def event(self, name: str, body: Mapping[str, Any]) -> None:
        """Announce an event such as ``st2.execution__update`` (routing key = the name)."""
        declare: list[Any] = [EVENT_EXCHANGE]
        if self._local:
            declare += [queue for queue in DOORBELLS if queue.routing_key == name]
        self._publish(body, exchange=EVENT_EXCHANGE, routing_key=name, declare=declare)

    def announce(self, route: str, payload: Mapping[str, Any]) -> None:
        """Post an announcement: the stream event ``st2.announcement__<route>``, with the body
        StackStorm's announcement dispatcher sends."""
        self.event(f"st2.announcement__{route}", {"payload": dict(payload), "trace_context": None})

    def close(self) -> None:
        """Release the connections."""
        self._work.close()
        self._events.close()


def hand_over_many(publisher: Publisher, pairs: Sequence[tuple[str, str]]) -> None:
    """:func:`hand_over` for many requested executions: one message to the scheduler for all
    of them (a rules engine's batch), then one ``st2.execution__create`` event each."""
    if not pairs:
        return
    try:
        publisher.requested_many(pairs)
        for liveaction_id, execution_id in pairs:
            publisher.event(
                "st2.execution__create",
                {"liveaction_id": liveaction_id, "execution_id": execution_id},
            )
    except (OSError, KombuError, AMQPError):
        logger.exception(
            "Could not hand %d executions to the scheduler; its sweep will pick them up",
            len(pairs),
        )


def hand_over(publisher: Publisher, liveaction_id: str, execution_id: str) -> None:
    """After commit, tell the scheduler and the stream about a requested execution.

    The execution is committed already, so a broker outage only delays it: the scheduler's
    sweep finds requested work whose message never came.
    """
    body = {"liveaction_id": liveaction_id, "execution_id": execution_id}
    try:
        publisher.requested(liveaction_id, execution_id)
        publisher.event("st2.execution__create", body)
    except (OSError, KombuError, AMQPError):
        logger.exception(
            "Could not hand execution %s to the scheduler; its sweep will pick it up",
            execution_id,
        )
