"""The engine's HTTP applications: st2api (9101), st2auth (9100), st2stream (9102).

Each listener gets an application with its routers; the single-port layout (behind a proxy, or
the embedded default) gets one application with all of them. Paths are normalised first
(trailing slash, ``/api/v1``, ``/auth/v1``, ``/stream/v1``), errors are StackStorm faultstrings,
and the OpenAPI document is served at ``/v1/openapi.json``. Every application also answers
``/health/live`` and ``/health/ready`` (database, and the broker for st2api and st2stream)
without authentication.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Literal

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from poundcake.engine.api import routers
from poundcake.engine.api.errors import install_error_handlers
from poundcake.engine.api.paths import NormalisePaths
from poundcake.engine.runtime import EngineRuntime
from poundcake.probes import health

Listener = Literal["api", "auth", "stream"]
ALL_LISTENERS: tuple[Listener, ...] = ("api", "auth", "stream")


def create_app(runtime: EngineRuntime, listeners: Iterable[Listener] = ALL_LISTENERS) -> FastAPI:
    """Build the application for ``listeners`` on ``runtime``."""
    wanted = set(listeners)
    app = FastAPI(
        title="PoundCake engine API (StackStorm-compatible)",
        version="v1",
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    for listener, prefix, router in discover_routers():
        if listener in wanted:
            app.include_router(router, prefix=prefix)
    add_health_routes(app, runtime, wanted)
    app.add_middleware(NormalisePaths)
    return app


def add_health_routes(app: FastAPI, runtime: EngineRuntime, listeners: set[Listener]) -> None:
    """``/health/live`` and ``/health/ready`` (503 naming what is not ready)."""
    service = f"st2{next(iter(listeners))}" if len(listeners) == 1 else "st2"
    checks = [
        health.Check("database", health.database_probe(runtime.engine)),
        # st2api hands requested work to the scheduler and st2stream relays events: both need
        # the broker; st2auth only needs the database.
        health.Check(
            "broker",
            health.broker_probe(runtime.config.messaging_url),
            required=bool(listeners & {"api", "stream"}),
        ),
    ]

    def live() -> JSONResponse:
        return JSONResponse(health.live_body(service))

    def ready() -> JSONResponse:
        readiness = health.run_checks(service, checks)
        return JSONResponse(readiness.body, status_code=readiness.status_code)

    app.add_api_route(health.LIVE_PATH, live, methods=["GET"], include_in_schema=False)
    app.add_api_route(health.READY_PATH, ready, methods=["GET"], include_in_schema=False)


def discover_routers() -> list[tuple[Listener, str, APIRouter]]:
    """Every module in :mod:`poundcake.engine.api.routers` with its ``router``, ``LISTENER``
    (api, auth or stream; default api) and ``PREFIX`` (default ``/v1``)."""
    found = []
    for info in sorted(pkgutil.iter_modules(routers.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{routers.__name__}.{info.name}")
        listener: Listener = getattr(module, "LISTENER", "api")
        found.append((listener, getattr(module, "PREFIX", "/v1"), module.router))
    return found
