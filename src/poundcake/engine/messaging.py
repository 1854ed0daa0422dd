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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amqp.exceptions import AMQPError, MessageNacked  # type: ignore[import-untyped]
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


AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


def make_connection(url: str, *, confirm: bool = True) -> Connection:
    """Open a kombu connection for the engine's broker URL (publisher confirms on AMQP)."""
    if url.startswith(AMQP_SCHEMES):
        return Connection(url, transport_options={"confirm_publish": confirm}, heartbeat=30)
    return Connection(url)


CONFIRM_TIMEOUT = 30.0


@dataclass(frozen=True)
class Outgoing:
    """One message to publish: its body, where it goes, and what to declare first."""

    body: Mapping[str, Any]
    exchange: Exchange
    routing_key: str
    declare: list[Any]


class _Confirms:
    """The broker's publisher confirms on one AMQP channel, collected as they arrive.

    Publishing does not wait for each confirmation: a batch of messages is sent, then the
    publisher waits once until the broker has confirmed every one of them (or refused one).
    """

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.published = 0
        self.outstanding: set[int] = set()
        self.refused = False
        channel.events["basic_ack"].add(self._ack)
        channel.events["basic_nack"].add(self._nack)
        channel.confirm_select()

    def sent(self) -> None:
        self.published += 1
        self.outstanding.add(self.published)

    def _settle(self, tag: int, multiple: bool) -> None:
        if multiple:
            self.outstanding = {waiting for waiting in self.outstanding if waiting > tag}
        else:
            self.outstanding.discard(tag)

    def _ack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple)

    def _nack(self, tag: int, multiple: bool) -> None:
        self.refused = True
        self._settle(tag, multiple)

    def wait(self, connection: Connection) -> None:
        """Wait until the broker confirmed everything sent; raise if it refused any of it."""
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        while self.outstanding:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the broker confirmed no message for {CONFIRM_TIMEOUT:.0f} s")
            connection.drain_events(timeout=remaining)
        if self.refused:
            self.refused = False
            raise MessageNacked("the broker refused a message")


class _Channel:
    """One connection and producer, used under a lock.

    On AMQP a confirmed channel collects the broker's confirmations itself (:class:`_Confirms`),
    so that a batch of messages costs one wait for the broker, not one per message.
    """

    def __init__(self, url: str, confirm: bool) -> None:
        self.url = url
        self.confirm = confirm
        self.lock = threading.Lock()
        self.connection: Connection | None = None
        self.producer: Producer | None = None
        self.declared: set[str] = set()
        self.confirms: _Confirms | None = None
        self._amqp = url.startswith(AMQP_SCHEMES)

    def publish(
        self, body: Mapping[str, Any], exchange: Exchange, routing_key: str, declare: list[Any]
    ) -> None:
        self.publish_many([Outgoing(body, exchange, routing_key, declare)])

    def publish_many(self, messages: Sequence[Outgoing]) -> None:
        if not messages:
            return
        with self.lock:
            if self.producer is None or self.connection is None:
                # Confirmations are collected by _Confirms, not by py-amqp after each message.
                self.connection = make_connection(self.url, confirm=False)
                self.producer = Producer(self.connection.channel(), serializer="json")
                self.declared = set()
                self.confirms = None
            send = self.connection.ensure(self.producer, self._send, **_RETRY_POLICY)
            send(messages)

    def _send(self, messages: Sequence[Outgoing]) -> None:
        assert self.producer is not None and self.connection is not None
        confirms = None
        if self.confirm and self._amqp:
            if self.confirms is None or self.confirms.channel is not self.producer.channel:
                self.confirms = _Confirms(self.producer.channel)
            confirms = self.confirms
        for message in messages:
            key = f"{message.exchange.name}:{message.routing_key}"
            self.producer.publish(
                dict(message.body),
                exchange=message.exchange,
                routing_key=message.routing_key,
                declare=[] if key in self.declared else message.declare,
                delivery_mode=2 if self.confirm else 1,
            )
            self.declared.add(key)
            if confirms is not None:
                confirms.sent()
        if confirms is not None:
            confirms.wait(self.connection)

    def close(self) -> None:
        with self.lock:
            if self.connection is not None:
                self.connection.release()
            self.connection = None
            self.producer = None
            self.confirms = None


@dataclass(frozen=True)
class WorkMessage:
    """A scheduled live action to hand over: its execution, whether it is a workflow, and its
    runner type (Orquesta workflows go to the workflow engines)."""

    liveaction_id: str
    execution_id: str
    workflow: bool = False
    runner_type: str | None = None


def _work_message(item: WorkMessage) -> Outgoing:
    queue = RUNNER_QUEUE
    if item.runner_type == ORQUESTA_RUNNER_TYPE:
        queue = WORKFLOW_ENGINE_QUEUE
    elif item.workflow:
        queue = WORKFLOW_QUEUE
    body = {"liveaction_id": item.liveaction_id, "execution_id": item.execution_id}
    return Outgoing(body, ACTIONRUNNER_EXCHANGE, str(queue.routing_key), [queue])


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
        self._local = not url.startswith(AMQP_SCHEMES)

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
        self.work_many([WorkMessage(liveaction_id, execution_id, workflow, runner_type)])

    def work_many(self, items: Sequence[WorkMessage]) -> None:
        """:meth:`work` for many live actions: one message each, one wait for the broker's
        confirmation of all of them."""
        self._work.publish_many([_work_message(item) for item in items])

    def event(self, name: str, body: Mapping[str, Any]) -> None:
        """Announce an event such as ``st2.execution__update`` (routing key = the name)."""
        self.events(name, [body])

    def events(self, name: str, bodies: Sequence[Mapping[str, Any]]) -> None:
        """Announce one event ``name`` per body, together."""
        declare: list[Any] = [EVENT_EXCHANGE]
        if self._local:
            declare += [queue for queue in DOORBELLS if queue.routing_key == name]
        self._events.publish_many(
            [Outgoing(body, EVENT_EXCHANGE, name, declare) for body in bodies]
        )

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
        publisher.events(
            "st2.execution__create",
            [
                {"liveaction_id": liveaction_id, "execution_id": execution_id}
                for liveaction_id, execution_id in pairs
            ],
        )
    except (OSError, KombuError, AMQPError):
        logger.exception(
            "Could not hand %d executions to the scheduler; its sweep will pick them up",
            len(pairs),
        )


def hand_over_scheduled(publisher: Publisher, items: Sequence[WorkMessage]) -> None:
    """After commit, hand executions written ``scheduled`` straight to the runners, then tell
    the stream they were created and scheduled.

    They are committed already, so a broker outage only delays them: the scheduler's sweep
    sends again scheduled work nobody claimed.
    """
    if not items:
        return
    bodies = [
        {"liveaction_id": item.liveaction_id, "execution_id": item.execution_id} for item in items
    ]
    try:
        publisher.work_many(items)
        publisher.events("st2.execution__create", bodies)
        publisher.events("st2.execution__update", bodies)
    except (OSError, KombuError, AMQPError, MessageNacked):
        logger.exception(
            "Could not hand %d scheduled executions to the runners; the scheduler's sweep "
            "sends them again",
            len(items),
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
