"""Every error as StackStorm sends it: JSON ``{"faultstring": ...}`` with StackStorm's codes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from poundcake.exceptions import (
    PoundCakeError,
)

logger = logging.getLogger(__name__)


def fault(status: int, message: str) -> JSONResponse:
    """A StackStorm error response."""
    return JSONResponse({"faultstring": message}, status_code=status)


def status_for(error: PoundCakeError) -> int:
    """The HTTP status StackStorm uses for an error of this kind."""
    return error.http_status


def install_error_handlers(app: FastAPI) -> None:
    """Map our exception tree, request validation and unknown routes to faultstrings."""

    @app.exception_handler(PoundCakeError)
    async def domain_error(_request: Request, error: PoundCakeError) -> JSONResponse:
        status = status_for(error)
        if status == 401:
            return fault(401, f"Unauthorized - {error}")
        return fault(status, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        first = problems[0] if problems else {"msg": "invalid request", "loc": ()}
        where = ".".join(
            str(part) for part in first.get("loc", ()) if part not in ("body", "query")
        )
        message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        return fault(400, message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 404 and error.detail == "Not Found":
            return fault(404, f'No route matches "{request.url.path}" path')
        if error.status_code == 405:
            return fault(405, f'Method {request.method} is not allowed for "{request.url.path}"')
        return fault(error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=error)
        return fault(500, "Internal Server Error")
