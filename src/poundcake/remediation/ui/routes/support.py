"""What the web UI's routes share: ``{"detail"}`` errors, the login and CSRF checks, the engine.

Routes built with :class:`UiRoute` answer every error as ``{"detail": "<message>"}`` (the UI's
contract) instead of the operator API's ``{"request_id", "error"}``; the message also goes to
the API call record, as ``error_response`` does. Engine refusals keep their status (4xx),
an engine or database that cannot be reached is a 503, a finished execution that cannot be
canceled a 409.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from poundcake.exceptions import PoundCakeError
from poundcake.remediation.api.calls import request_info
from poundcake.remediation.api.dependencies import Db, get_api
from poundcake.remediation.api.responses import json_response
from poundcake.remediation.engine_api import (
    EngineClient,
    EngineError,
    EngineNotFoundError,
    EngineUnavailableError,
)
from poundcake.remediation.ui.sessions import (
    COOKIE_NAME,
    CSRF_HEADER,
    Login,
    LoginThrottle,
    check_csrf,
    find_session,
)

logger = logging.getLogger(__name__)

ENGINE_UNAVAILABLE = "The engine is unavailable right now; try again shortly."
INTERNAL_ERROR = "Internal server error."
DATABASE_UNAVAILABLE = "The database is unavailable right now; try again shortly."
UNAVAILABLE: tuple[type[Exception], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
    sa.exc.DisconnectionError,
)
_STATE_LOCK = threading.Lock()


def detail_response(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """``{"detail": message}``; the message is what the API call record keeps."""
    request_info(request).error = message
    return json_response(status, {"detail": message}, headers=headers)


def _engine_error(request: Request, error: EngineError) -> Response:
    if isinstance(error, EngineUnavailableError):
        logger.warning("The engine is unavailable to the UI: %s", error)
        return detail_response(request, 503, ENGINE_UNAVAILABLE, {"Retry-After": "5"})
    message = error.faultstring or str(error)
    if isinstance(error, EngineNotFoundError):
        return detail_response(request, 404, message)
    status = error.status_code if error.status_code and 400 <= error.status_code < 500 else 502
    return detail_response(request, status, message)


def error_detail(request: Request, error: Exception) -> Response:
    """The ``{"detail"}`` answer to an error raised by a UI route or its dependencies."""
    if isinstance(error, EngineError):
        return _engine_error(request, error)
    if isinstance(error, PoundCakeError):
        status = error.http_status
        if status == 503:
            return detail_response(request, 503, DATABASE_UNAVAILABLE, {"Retry-After": "5"})
        if status >= 500:
            logger.error("Unexpected %s on %s", type(error).__name__, request.url.path)
            return detail_response(request, 500, INTERNAL_ERROR)
        return detail_response(request, status, str(error))
    if isinstance(error, sa.exc.SQLAlchemyError):
        if isinstance(error, UNAVAILABLE):
            logger.warning("Database unavailable to the UI (%s)", type(error).__name__)
            return detail_response(request, 503, DATABASE_UNAVAILABLE, {"Retry-After": "5"})
        logger.error("Database error on %s", request.url.path, exc_info=error)
        return detail_response(request, 500, INTERNAL_ERROR)
    if isinstance(error, RequestValidationError):
        problems = error.errors()
        first: dict[str, Any] = problems[0] if problems else {"msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        return detail_response(request, 400, message)
    if isinstance(error, StarletteHTTPException):
        return detail_response(request, error.status_code, str(error.detail))
    raise error


class UiRoute(APIRoute):
    """An API route whose errors are ``{"detail": ...}``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (
                PoundCakeError,
                RequestValidationError,
                StarletteHTTPException,
                sa.exc.SQLAlchemyError,
            ) as error:
                return error_detail(request, error)

        return handle


def login_throttle(request: Request) -> LoginThrottle:
    """The application's failed-login counter (made on first use)."""
    state = request.app.state
    with _STATE_LOCK:
        throttle: LoginThrottle | None = getattr(state, "poundcake_ui_throttle", None)
        if throttle is None:
            throttle = LoginThrottle()
            state.poundcake_ui_throttle = throttle
    return throttle


def current_login(request: Request, session: Db) -> Login:
    """The login of the request's session cookie (401 otherwise)."""
    return find_session(session, request.cookies.get(COOKIE_NAME))


def writing_login(request: Request, login: Annotated[Login, Depends(current_login)]) -> Login:
    """The login of a write: the session cookie and its CSRF token (401, 403 otherwise)."""
    check_csrf(login, request.headers.get(CSRF_HEADER))
    return login


def engine_api_client(request: Request) -> Iterator[EngineClient]:
    """A client of the engine's API with PoundCake's key, closed after the request."""
    client = EngineClient.from_settings(get_api(request).settings)
    try:
        yield client
    finally:
        client.close()


UiLogin = Annotated[Login, Depends(current_login)]
UiWriter = Annotated[Login, Depends(writing_login)]
EngineApiClient = Annotated[EngineClient, Depends(engine_api_client)]
