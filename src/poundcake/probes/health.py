"""Liveness and readiness of the HTTP processes (poundcake-api, st2api, st2auth, st2stream).

``/health/live`` says only that the process answers. ``/health/ready`` runs cheap probes (the
database answers ``SELECT 1``, the broker accepts a connection) and is ready when every
*required* one passes; the body names each check and what is not ready. Bodies carry check names
and ``ok`` / ``unreachable`` only: never URLs, hosts or driver messages, which may hold secrets.
The web framework's side (routes, status codes) lives in each application.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from amqp.exceptions import AMQPError  # type: ignore[import-untyped]
from kombu.connection import Connection
from kombu.exceptions import KombuError

logger = logging.getLogger(__name__)

LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"
BROKER_TIMEOUT_SECONDS = 2.0
OK = "ok"
UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Check:
    """One readiness probe: ``probe`` raises when the dependency cannot be used."""

    name: str
    probe: Callable[[], None]
    required: bool = True


@dataclass(frozen=True)
class Readiness:
    """The outcome of the probes: whether the process is ready, and the body to answer."""

    ready: bool
    body: dict[str, Any]

    @property
    def status_code(self) -> int:
        """200 when ready, else 503."""
        return 200 if self.ready else 503


def live_body(service: str) -> dict[str, Any]:
    """The body of ``/health/live``."""
    return {"status": "live", "service": service}


def database_probe(db_engine: sa.Engine) -> Callable[[], None]:
    """A probe that runs ``SELECT 1`` on a pooled connection of ``db_engine``."""

    def probe() -> None:
        with db_engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))

    return probe


def broker_probe(url: str, timeout: float = BROKER_TIMEOUT_SECONDS) -> Callable[[], None]:
    """A probe that opens (and closes) a kombu connection to the broker at ``url``."""

    def probe() -> None:
        connection = Connection(url, connect_timeout=timeout)
        try:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            channel = connection.channel()
            channel.close()
        finally:
            connection.release()

    return probe


PROBE_ERRORS: tuple[type[BaseException], ...] = (
    sa.exc.SQLAlchemyError,
    OSError,
    KombuError,
    AMQPError,
    TimeoutError,
)


def run_checks(service: str, checks: Sequence[Check]) -> Readiness:
    """Run every probe; ready when every required one passed."""
    results: dict[str, dict[str, Any]] = {}
    not_ready: list[str] = []
    for check in checks:
        try:
            check.probe()
        except PROBE_ERRORS as error:
            logger.warning("Readiness: %s is unreachable (%s)", check.name, type(error).__name__)
            results[check.name] = {"status": UNREACHABLE, "required": check.required}
            if check.required:
                not_ready.append(check.name)
            continue
        results[check.name] = {"status": OK, "required": check.required}
    body = {
        "status": "not ready" if not_ready else "ready",
        "service": service,
        "checks": results,
        "not_ready": not_ready,
    }
    return Readiness(ready=not not_ready, body=body)
