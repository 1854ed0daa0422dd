"""poundcake-api's application: routers, request ids and API call records, errors, ``/health``.

``create_app(config)`` builds everything from the configuration; tests and benchmarks pass their
own session factory and task queue. :data:`ROUTERS` lists every router with its prefix. Errors
are JSON ``{"request_id", "error"}``; a database that cannot be reached is a 503 with
``Retry-After`` (a status Alertmanager retries), never a 2xx or 4xx.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from poundcake.config import PoundCakeConfig
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.session import make_session_factory
from poundcake.exceptions import (
    PoundCakeError,
)
from poundcake.probes import health as health_checks
from poundcake.remediation.api.auth import TokenChecker, webhook_tokens
from poundcake.remediation.api.background import DeliveryHandoff, Enqueue
from poundcake.remediation.api.calls import ApiCallRecorder, RequestContextMiddleware
from poundcake.remediation.api.dependencies import ApiState, get_api, get_request_id
from poundcake.remediation.api.metrics import (
    CONTENT_TYPE,
    METRICS_PATH,
    DatabaseCollector,
    IntakeMetrics,
    IntakeTimer,
    exposition,
)
from poundcake.remediation.api.responses import error_response, json_response
from poundcake.remediation.api.routers import alerts, approvals, cabs, requests, webhook
from poundcake.remediation.api.slots import TransactionSlots
from poundcake.remediation.intake.service import WEBHOOK_PATHS
from poundcake.remediation.tasks.app import QUEUE, broker_url
from poundcake.remediation.tasks.enqueue import close_enqueue, configure_enqueue, enqueue_deliveries
from poundcake.remediation.ui.routes import data as ui_data
from poundcake.remediation.ui.routes import events as ui_events
from poundcake.remediation.ui.routes import session as ui_session

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "/api/v1"
UI_API_PREFIX = "/ui/api"
HEALTH_PATH = "/health"
SERVICE = "poundcake-api"
RETRY_AFTER = {"Retry-After": "5"}
# Threads that may wait on the database at once (FastAPI's pool has 40): 20 connections.
POOL_SIZE = 10
# A pooled connection is pinged before use only after this long unused: under load no request
# pays the round trip, and one the server dropped meanwhile fails as a 503, which Alertmanager
# retries (the intake commits before its 202, so a retry stores nothing twice).
PING_AFTER_IDLE_SECONDS = 1.0
UNAVAILABLE: tuple[type[Exception], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
    sa.exc.DisconnectionError,
)


@dataclass(frozen=True)
class Mount:
    """A router of poundcake-api, its prefix, and the paths whose routes record their own API
    call (in the intake transaction) instead of the middleware."""

    router: APIRouter
    prefix: str = DEFAULT_PREFIX
    self_recorded: tuple[str, ...] = ()


ROUTERS: tuple[Mount, ...] = (
    Mount(alerts.router),
    Mount(approvals.router),
    Mount(cabs.router),
    Mount(requests.router),
    Mount(webhook.router, prefix="", self_recorded=WEBHOOK_PATHS),
    Mount(ui_session.router, prefix=""),
    Mount(ui_data.router, prefix=UI_API_PREFIX),
    Mount(ui_events.router, prefix=UI_API_PREFIX),
)


def create_app(
    config: PoundCakeConfig,
    *,
    sessions: sessionmaker[Session] | None = None,
    enqueue: Enqueue | None = None,
) -> FastAPI:
    """Build poundcake-api on ``config`` (its own database engine unless ``sessions`` is given)."""
    db_engine = None
    if sessions is None:
        db_engine = make_poundcake_engine(
            config, pool_size=POOL_SIZE, service=True, ping_after_idle=PING_AFTER_IDLE_SECONDS
        )
        sessions = make_session_factory(db_engine)
    recorder = ApiCallRecorder(sessions)
    close_queue = _nothing_to_close
    if enqueue is None:
        enqueue, close_queue = default_enqueue(config)
    handoff = DeliveryHandoff(enqueue)
    state = ApiState(
        config=config,
        sessions=sessions,
        webhook_auth=TokenChecker(webhook_tokens(config.settings)),
        handoff=handoff,
        recorder=recorder,
        intake_slots=TransactionSlots(POOL_SIZE, timeout=config.settings.database_timeout_seconds),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        handoff.close()
        close_queue()
        recorder.close()
        if db_engine is not None:
            db_engine.dispose()

    app = FastAPI(
        title="PoundCake API",
        version="v1",
        openapi_url=f"{DEFAULT_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.poundcake = state
    install_error_handlers(app)
    self_recorded: set[str] = set()
    for mount in ROUTERS:
        app.include_router(mount.router, prefix=mount.prefix)
        self_recorded.update(mount.prefix + path for path in mount.self_recorded)
    app.add_api_route(HEALTH_PATH, health, methods=["GET"], include_in_schema=False)
    add_operations_routes(app, config, sessions)
    app.add_middleware(
        RequestContextMiddleware,
        recorder=recorder,
        self_recorded=frozenset(self_recorded),
        unrecorded=frozenset(
            {HEALTH_PATH, health_checks.LIVE_PATH, health_checks.READY_PATH, METRICS_PATH}
        ),
    )
    return app


def add_operations_routes(
    app: FastAPI, config: PoundCakeConfig, sessions: sessionmaker[Session]
) -> None:
    """``/health/live``, ``/health/ready`` and ``/metrics``: no authentication, never recorded."""
    bind = sessions.kw.get("bind")
    checks = []
    if isinstance(bind, sa.Engine):
        checks.append(health_checks.Check("database", health_checks.database_probe(bind)))
    broker, queue = celery_broker(config)
    # Intake never needs the broker (the relay hands deliveries over later): reported only.
    probe = health_checks.broker_probe(broker)
    checks.append(health_checks.Check("broker", probe, required=False))
    registry = CollectorRegistry()
    intake = IntakeMetrics(registry)
    registry.register(
        DatabaseCollector(
            sessions,
            broker_url=broker,
            celery_queue=queue,
            breaker_quiet_seconds=config.settings.breaker_quiet_seconds,
        )
    )

    def live() -> Response:
        return json_response(200, health_checks.live_body(SERVICE))

    def ready() -> Response:
        readiness = health_checks.run_checks(SERVICE, checks)
        return json_response(readiness.status_code, readiness.body)

    def metrics() -> Response:
        return Response(exposition(registry), media_type=CONTENT_TYPE)

    app.add_api_route(health_checks.LIVE_PATH, live, methods=["GET"], include_in_schema=False)
    app.add_api_route(health_checks.READY_PATH, ready, methods=["GET"], include_in_schema=False)
    app.add_api_route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)
    app.add_middleware(IntakeTimer, metrics=intake, paths=WEBHOOK_PATHS)


def celery_broker(config: PoundCakeConfig) -> tuple[str, str]:
    """The workers' broker URL and queue."""
    return broker_url(config.settings), QUEUE


def default_enqueue(config: PoundCakeConfig) -> tuple[Enqueue, Callable[[], None]]:
    """The task queue's ``enqueue_deliveries``, set up with ``config``'s broker, and what closes
    it."""
    configure_enqueue(config.settings)
    return enqueue_deliveries, close_enqueue


def _nothing_to_close() -> None:
    return None


def health(request: Request) -> Response:
    """200 when the database answers, 503 otherwise."""
    api = get_api(request)
    request_id = get_request_id(request)
    try:
        with api.sessions() as session:
            session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        body = {"request_id": request_id, "status": "unavailable", "database": "unreachable"}
        return json_response(503, body, headers=RETRY_AFTER)
    return json_response(200, {"request_id": request_id, "status": "ok", "database": "ok"})


def status_for(error: PoundCakeError) -> int:
    """The HTTP status of an error of our tree."""
    return error.http_status


def install_error_handlers(app: FastAPI) -> None:
    """Map our exception tree, database failures, validation and HTTP errors to JSON errors."""

    @app.exception_handler(PoundCakeError)
    async def domain_error(request: Request, error: PoundCakeError) -> Response:
        status = status_for(error)
        if status == 503:
            return error_response(request, 503, "database unavailable", headers=RETRY_AFTER)
        if status == 500:
            logger.error("Unexpected %s", type(error).__name__, exc_info=error)
            return error_response(request, 500, "internal server error")
        return error_response(request, status, str(error))

    @app.exception_handler(sa.exc.SQLAlchemyError)
    async def database_error(request: Request, error: sa.exc.SQLAlchemyError) -> Response:
        if isinstance(error, UNAVAILABLE):
            logger.warning("Database unavailable (%s)", _describe(error))
            return error_response(request, 503, "database unavailable", headers=RETRY_AFTER)
        logger.error("Database error on %s %s", request.method, request.url.path, exc_info=error)
        return error_response(request, 500, "internal server error")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = error.errors()
        first: dict[str, Any] = problems[0] if problems else {"msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        return error_response(request, 400, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404 and error.detail == "Not Found":
            return error_response(request, 404, f"no route matches {request.url.path}")
        if error.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
            return error_response(request, 405, message)
        return error_response(request, error.status_code, str(error.detail))


def _describe(error: sa.exc.SQLAlchemyError) -> str:
    if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
        return f"{type(error.orig).__name__} {getattr(error.orig, 'args', ())[:1]}"
    return type(error).__name__
