"""The Celery app of PoundCake's workers: broker, delivery semantics, tasks, beat schedule.

Delivery is at least once, and every task is idempotent (see :mod:`poundcake.remediation.dispatch`
and :mod:`poundcake.remediation.tracking.service`):

* ``task_acks_late`` with ``task_reject_on_worker_lost``: a task whose worker dies mid-run is
  delivered again; ``worker_prefetch_multiplier = 1``: a worker holds only what it runs;
* a task that meets a transient error (engine or database unavailable) retries itself with
  exponential backoff (1 s doubling to 60 s, jittered); a task that fails otherwise, or runs out
  of time, is acknowledged, not redelivered in a loop: its deliveries stay unprocessed in the
  database and the outbox relay hands them out again, more slowly each time;
* Redis' visibility timeout (300 s) is longer than any task and any retry countdown, and expired
  messages are restored on every scan instead of one in ten;
* JSON only, no result backend.

The database, not the broker, is the system of record: whatever a broker loses, the relay rebuilds
from the outbox. Broker: ``CELERY_BROKER_URL``, else ``REDIS_URL``, else the embedded
``sqla+sqlite:///<data_dir>/celery-broker.sqlite3``.
"""

from __future__ import annotations

import random
from typing import Any

from celery import Celery

from poundcake.config import PoundCakeConfig, Settings
from poundcake.remediation.resources import WorkerResources
from poundcake.remediation.tasks.broker import TRANSPORT as REDIS_TRANSPORT

QUEUE = "poundcake"
PROCESS_DELIVERIES = "poundcake.process_deliveries"
RELAY_OUTBOX = "poundcake.relay_outbox"
FOLLOW_REMEDIATIONS = "poundcake.follow_remediations"
FOLLOW_ALERT = "poundcake.follow_alert"
AFTERCARE = "poundcake.aftercare"
RENEW_TARGET_LOCKS = "poundcake.renew_target_locks"
APPROVALS = "poundcake.approvals"
# Target leases are renewed when past half their length; a few passes per lease is plenty.
RENEW_INTERVAL = 5.0

BROKER_FILE = "celery-broker.sqlite3"
VISIBILITY_TIMEOUT = 300
TASK_TIME_LIMIT = 240
BEAT_INTERVAL = 2.0
# A beat message that waited this long is dropped: the next one is on its way.
BEAT_EXPIRES = 10.0
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
_REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://", "unix://")
# URLs whose transport is PoundCake's Redis transport (:mod:`poundcake.remediation.tasks.broker`).
_OWN_TRANSPORT_SCHEMES = ("redis://", "rediss://")


def broker_url(settings: Settings) -> str:
    """``CELERY_BROKER_URL``, else ``REDIS_URL``, else the embedded SQLite broker."""
    if settings.celery_broker_url:
        return settings.celery_broker_url
    if settings.redis_url:
        return settings.redis_url
    return f"sqla+sqlite:///{settings.data_dir / BROKER_FILE}"


def _transport_options(url: str) -> dict[str, Any]:
    if not url.startswith(_REDIS_SCHEMES):
        return {}
    return {
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 5,
        "socket_timeout": 30,
    }


def beat_schedule() -> dict[str, dict[str, Any]]:
    """The relay, the follower and aftercare every :data:`BEAT_INTERVAL` seconds; lease renewal."""
    options = {"queue": QUEUE, "expires": BEAT_EXPIRES}
    return {
        "relay-outbox": {"task": RELAY_OUTBOX, "schedule": BEAT_INTERVAL, "options": options},
        "follow-remediations": {
            "task": FOLLOW_REMEDIATIONS,
            "schedule": BEAT_INTERVAL,
            "options": options,
        },
        # Run safety: silences while CABs run, verification after they succeed.
        "aftercare": {"task": AFTERCARE, "schedule": BEAT_INTERVAL, "options": options},
        # Approvals: ask through the engine's inquiries, expire, follow st2's answers.
        "approvals": {"task": APPROVALS, "schedule": BEAT_INTERVAL, "options": options},
        "renew-target-locks": {
            "task": RENEW_TARGET_LOCKS,
            "schedule": RENEW_INTERVAL,
            "options": options,
        },
    }


def make_celery(settings: Settings) -> Celery:
    """A Celery app with PoundCake's broker and delivery settings, without tasks.

    Enough to send tasks by name (the API, beat); workers use :func:`create_celery_app`.
    """
    url = broker_url(settings)
    if url.startswith("sqla+sqlite:"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = Celery("poundcake", broker=url, set_as_current=False)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(url),
        # kombu's Redis transport, surviving a Redis lost with messages unacknowledged.
        broker_transport=REDIS_TRANSPORT if url.startswith(_OWN_TRANSPORT_SCHEMES) else None,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure=True,
        task_acks_on_timeout=True,
        task_time_limit=TASK_TIME_LIMIT,
        task_default_queue=QUEUE,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        enable_utc=True,
        timezone="UTC",
        beat_schedule=beat_schedule(),
    )
    return app


def retry_countdown(retries: int) -> float:
    """Seconds before retry number ``retries + 1``: 1, 2, 4, ... up to 60, jittered."""
    base = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * (1 << min(retries, 16)))
    return min(RETRY_MAX_SECONDS, base * (0.75 + random.random() / 2))  # noqa: S311 - jitter


def create_celery_app(config: PoundCakeConfig, resources: WorkerResources | None = None) -> Celery:
    """The workers' Celery app with PoundCake's tasks registered."""
    # The task modules use this module's names; imported here so each can be read alone.
    from poundcake.remediation.tasks import aftercare, approvals, deliveries, follow, guards, relay

    app = make_celery(config.settings)
    resources = resources or WorkerResources(config)
    deliveries.register(app, resources)
    relay.register(app, resources)
    follow.register(app, resources)
    aftercare.register(app, resources)
    guards.register(app, resources)
    approvals.register(app, resources)
    return app
