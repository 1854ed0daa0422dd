"""Prometheus metrics of poundcake-api (``GET /metrics``, text exposition format).

Two kinds of figures:

* what happens in this process, counted as it happens: webhook intake requests by status and
  their latency (:class:`IntakeMetrics`, fed by the :class:`IntakeTimer` ASGI middleware);
* what lives in the database, read at scrape time with a few grouped ``COUNT`` queries
  (:class:`DatabaseCollector`): alerts by state, alerts per CAB and state (the remediation
  outcomes), step executions per CAB and status with a duration histogram, the outbox of
  unprocessed deliveries, the guards' decisions by reason and their breakers, the Celery queue
  length and the database pool. These are right however
  many API and worker processes run, because every scrape reads the shared state.

Each application has its own :class:`~prometheus_client.CollectorRegistry`, so several
applications in one process (tests) never share counters.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from poundcake.engine.public import ExecutionDB
from poundcake.probes.queues import celery_queue_depth
from poundcake.remediation.aftercare.models import Silence
from poundcake.remediation.aftercare.verification import ESCALATED
from poundcake.remediation.alerts.models import Alert, AlertDelivery
from poundcake.remediation.guards.breaker import breaker_states
from poundcake.remediation.guards.decisions import decision_counts
from poundcake.remediation.tracking.models import ExecutionExtension

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_PATH = "/metrics"
# Seconds; remediation steps run from milliseconds to minutes.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
INTAKE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
NO_CAB = ""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


class IntakeMetrics:
    """Webhook requests handled by this process: a counter by status and a latency histogram."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "poundcake_intake_requests",
            "Alertmanager webhook requests answered by this process, by HTTP status.",
            ["status"],
            registry=registry,
        )
        self.latency = Histogram(
            "poundcake_intake_duration_seconds",
            "Time to answer an Alertmanager webhook request in this process.",
            buckets=INTAKE_BUCKETS,
            registry=registry,
        )

    def observe(self, status: int, seconds: float) -> None:
        """Count one answered webhook request."""
        self.requests.labels(status=str(status)).inc()
        self.latency.observe(seconds)


class IntakeTimer:
    """ASGI middleware timing the requests to ``paths`` (the webhook) into ``metrics``."""

    def __init__(self, app: Asgi, *, metrics: IntakeMetrics, paths: Iterable[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.metrics.observe(status, time.perf_counter() - started)


def _duration_seconds(dialect: str) -> sa.ColumnElement[Any]:
    start, end = ExecutionDB.start_timestamp, ExecutionDB.end_timestamp
    if dialect == "sqlite":
        return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0
    return sa.func.timestampdiff(sa.literal_column("MICROSECOND"), start, end) / 1_000_000.0


class DatabaseCollector(Collector):
    """Figures read from the database (and the Celery broker) at every scrape."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        broker_url: str | None = None,
        celery_queue: str = "",
        breaker_quiet_seconds: float = 300.0,
    ) -> None:
        self.sessions = sessions
        self.broker_url = broker_url
        self.celery_queue = celery_queue
        self.breaker_quiet_seconds = breaker_quiet_seconds

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family; a database that does not answer is ``database_up 0``."""
        up = GaugeMetricFamily(
            "poundcake_database_up", "1 when the database answered this scrape's queries."
        )
        try:
            with self.sessions() as session:
                families = list(self._database_families(session))
        except sa.exc.SQLAlchemyError as error:
            logger.warning("Metrics: the database did not answer (%s)", type(error).__name__)
            families = []
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
        yield up
        yield from families
        yield from self._pool_families()
        yield from self._broker_families()

    def _database_families(self, session: Session) -> Iterator[Metric]:
        alerts = GaugeMetricFamily(
            "poundcake_alerts", "Alert episodes by lifecycle state.", labels=["state"]
        )
        for state, count in session.execute(
            sa.select(Alert.state, sa.func.count()).group_by(Alert.state)
        ):
            alerts.add_metric([state], count)
        yield alerts
        per_cab = GaugeMetricFamily(
            "poundcake_cab_alerts",
            "Alert episodes matched to a CAB, by CAB and state (remediated and failed are the "
            "remediation outcomes).",
            labels=["cab", "state"],
        )
        query = (
            sa.select(Alert.cab_name, Alert.state, sa.func.count())
            .where(Alert.cab_name.is_not(None))
            .group_by(Alert.cab_name, Alert.state)
        )
        for cab, state, count in session.execute(query):
            per_cab.add_metric([cab or NO_CAB, state], count)
        yield per_cab
        outbox = GaugeMetricFamily(
            "poundcake_outbox_deliveries",
            "Alert deliveries stored but not processed by a worker yet.",
        )
        unprocessed = session.scalar(
            sa.select(sa.func.count())
            .select_from(AlertDelivery)
            .where(AlertDelivery.processed_at.is_(None))
        )
        outbox.add_metric([], int(unprocessed or 0))
        yield outbox
        yield from self._guard_families(session)
        yield from self._execution_families(session)
        yield from _run_safety_families(session)

    def _guard_families(self, session: Session) -> Iterator[Metric]:
        decisions = CounterMetricFamily(
            "poundcake_guard_decisions",
            "Guard decisions recorded, by CAB, decision (run, held, waiting, shadow, "
            "not_matched) and reason (admitted, match, flap, budget, cooldown, breaker, "
            "blast_radius, lock, shadow, template).",
            labels=["cab", "decision", "reason"],
        )
        for cab, decision, reason, count in decision_counts(session):
            decisions.add_metric([cab, decision, reason], count)
        yield decisions
        breakers = GaugeMetricFamily(
            "poundcake_breaker_open",
            "1 while a storm breaker or blast radius scope holds alerts (it closes after a "
            "quiet period or `poundcake breaker reset`), else 0.",
            labels=["scope"],
        )
        for state in breaker_states(session, quiet_seconds=self.breaker_quiet_seconds):
            breakers.add_metric([state.scope], 1 if state.open else 0)
        yield breakers

    def _execution_families(self, session: Session) -> Iterator[Metric]:
        steps = GaugeMetricFamily(
            "poundcake_step_executions",
            "Remediation step executions by CAB and status.",
            labels=["cab", "status"],
        )
        query = sa.select(
            ExecutionExtension.cab_name, ExecutionExtension.status, sa.func.count()
        ).group_by(ExecutionExtension.cab_name, ExecutionExtension.status)
        for cab, status, count in session.execute(query):
            steps.add_metric([cab or NO_CAB, status or "unknown"], count)
        yield steps
        yield self._duration_histogram(session)

    def _duration_histogram(self, session: Session) -> Metric:
        duration = _duration_seconds(session.get_bind().dialect.name)
        columns = [
            sa.func.sum(sa.case((duration <= bound, 1), else_=0)) for bound in DURATION_BUCKETS
        ]
        query = (
            sa.select(
                ExecutionExtension.cab_name,
                ExecutionDB.status,
                sa.func.count(),
                sa.func.sum(duration),
                *columns,
            )
            .join(ExecutionDB, ExecutionDB.id == ExecutionExtension.st2_execution_id)
            .where(ExecutionDB.end_timestamp.is_not(None))
            .group_by(ExecutionExtension.cab_name, ExecutionDB.status)
        )
        histogram = HistogramMetricFamily(
            "poundcake_step_execution_duration_seconds",
            "Duration of finished remediation step executions, by CAB and final status.",
            labels=["cab", "status"],
        )
        for cab, status, count, total, *cumulative in session.execute(query):
            buckets = [
                (str(bound), float(within or 0))
                for bound, within in zip(DURATION_BUCKETS, cumulative, strict=True)
            ]
            buckets.append(("+Inf", float(count)))
            histogram.add_metric([cab or NO_CAB, status], buckets, float(total or 0.0))
        return histogram

    def _pool_families(self) -> Iterator[Metric]:
        bind = self.sessions.kw.get("bind")
        pool = bind.pool if isinstance(bind, sa.Engine) else None
        if not isinstance(pool, sa.pool.QueuePool):
            return
        connections = GaugeMetricFamily(
            "poundcake_db_pool_connections",
            "Connections of this process' database pool, by state.",
            labels=["state"],
        )
        connections.add_metric(["checked_out"], pool.checkedout())
        connections.add_metric(["idle"], pool.checkedin())
        connections.add_metric(["overflow"], max(pool.overflow(), 0))
        yield connections
        size = GaugeMetricFamily(
            "poundcake_db_pool_size", "Connections this process' pool keeps open at most."
        )
        size.add_metric([], pool.size())
        yield size

    def _broker_families(self) -> Iterator[Metric]:
        if self.broker_url is None:
            return
        up = GaugeMetricFamily("poundcake_broker_up", "1 when the Celery broker answered.")
        depth = celery_queue_depth(self.broker_url, self.celery_queue)
        up.add_metric([], 0 if depth is None else 1)
        yield up
        if depth is not None:
            queued = GaugeMetricFamily(
                "poundcake_celery_queue_messages",
                "Messages waiting in the workers' Celery queue.",
                labels=["queue"],
            )
            queued.add_metric([depth.queue], depth.messages)
            yield queued


def _run_safety_families(session: Session) -> Iterator[Metric]:
    """Issue 21's outcomes: verifications (and escalations), silences, resumed runs."""
    verifications = GaugeMetricFamily(
        "poundcake_verifications",
        "Episodes whose fix was verified, by outcome (pending, verified, unverified) and "
        "whether an unverified fix was escalated (on_unverified: escalate).",
        labels=["verification", "escalated"],
    )
    escalated = Alert.verification_reason.like(f"%; {ESCALATED}")
    query = (
        sa.select(Alert.verification, escalated, sa.func.count())
        .where(Alert.verification.is_not(None))
        .group_by(Alert.verification, escalated)
    )
    for verification, was_escalated, count in session.execute(query):
        verifications.add_metric([str(verification), "true" if was_escalated else "false"], count)
    yield verifications
    silences = GaugeMetricFamily(
        "poundcake_silences",
        "Alertmanager silences made while CABs ran, by state (creating, active, expired, failed).",
        labels=["state"],
    )
    for state, count in session.execute(
        sa.select(Silence.state, sa.func.count()).group_by(Silence.state)
    ):
        silences.add_metric([state], count)
    yield silences
    resumed = GaugeMetricFamily(
        "poundcake_abandoned_runs_resumed",
        "Runs abandoned by a crashed action runner that were resumed (idempotent CABs).",
    )
    total = session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Alert.abandoned_retries), 0)))
    resumed.add_metric([], int(total or 0))
    yield resumed


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry's metrics in Prometheus' text format."""
    return generate_latest(registry)
