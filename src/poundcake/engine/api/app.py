"""The engine's HTTP applications: st2api (9101), st2auth (9100), st2stream (9102).

Each listener gets an application with its routers; the single-port layout (behind a proxy, or
the embedded default) gets one application with all of them. Paths are normalised first
(trailing slash, ``/api/v1``, ``/auth/v1``, ``/stream/v1``), errors are StackStorm faultstrings,
and the OpenAPI document is served at ``/v1/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from fastapi import FastAPI

from poundcake.engine.api.errors import install_error_handlers
from poundcake.engine.api.paths import NormalisePaths
from poundcake.engine.api.routers import actions, apikeys, runnertypes, tokens, user
from poundcake.engine.runtime import EngineRuntime

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
    if "api" in wanted:
        for module in (runnertypes, actions, apikeys, user):
            app.include_router(module.router, prefix="/v1")
    if "auth" in wanted:
        app.include_router(tokens.router)
    app.add_middleware(NormalisePaths)
    return app
