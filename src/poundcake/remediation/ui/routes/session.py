"""The web UI's pages and login: ``GET /``, ``/ui/static/<file>``, ``/ui/session``.

``POST /ui/session`` checks an engine user's password and sets the ``poundcake_session`` cookie
(HttpOnly, SameSite=Strict, Path=/, and Secure over HTTPS or with ``POUNDCAKE_ENV=production``);
the body is read here and never logged nor recorded (API call records keep no bodies).
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter, Request
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from poundcake.exceptions import AuthenticationError, NotFoundError, ValidationError
from poundcake.remediation.api.dependencies import Api, Db, get_api
from poundcake.remediation.api.responses import json_response
from poundcake.remediation.api.schemas import LoginBody, refusal
from poundcake.remediation.ui.routes.support import UiRoute, login_throttle
from poundcake.remediation.ui.sessions import (
    COOKIE_NAME,
    create_session,
    delete_session,
    find_session,
)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
MAX_LOGIN_BODY = 8192
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
}

router = APIRouter(tags=["ui"], route_class=UiRoute)


def _static_file(name: str) -> Path:
    """The file ``name`` of the static directory; NotFoundError for anything outside it."""
    root = STATIC_DIR.resolve()
    try:
        path = (root / name).resolve()
        found = path.is_relative_to(root) and path.is_file()
    except (OSError, ValueError):
        found = False
    if not found:
        raise NotFoundError(f"No file {name}")
    return path


@router.get("/", include_in_schema=False)
def index() -> Response:
    """The UI's single page."""
    return FileResponse(_static_file("index.html"), headers=PAGE_HEADERS)


@router.get("/ui/static/{name:path}", include_in_schema=False)
def static(name: str) -> Response:
    """A script, stylesheet or image of the UI."""
    return FileResponse(_static_file(name), headers=PAGE_HEADERS)


def _secure(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return (
        request.url.scheme == "https"
        or forwarded.lower() == "https"
        or get_api(request).settings.environment == "production"
    )


def _credentials(body: bytes) -> LoginBody:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError('the body must be JSON: {"username", "password"}') from None
    try:
        login = LoginBody.model_validate(document)
    except PydanticValidationError as error:
        shape = 'the body must be {"username", "password"}'
        raise ValidationError(
            refusal(error, shape, "username and password are required strings")
        ) from None
    try:
        # json.loads lets lone surrogates through ("\ud800"); they cannot reach the database.
        login.username.encode("utf-8")
        login.password.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("username and password must be valid Unicode text") from None
    return login


@router.post("/ui/session")
async def log_in(request: Request, api: Api, session: Db) -> Response:
    """Log in with an engine user's name and password."""
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_LOGIN_BODY:
        raise ValidationError("the login body is too large")
    body = await request.body()
    if len(body) > MAX_LOGIN_BODY:
        raise ValidationError("the login body is too large")
    credentials = _credentials(body)
    username, password = credentials.username, credentials.password
    throttle = login_throttle(request)
    client = request.client.host if request.client else "unknown"
    throttle.check(client, username)
    lifetime = api.settings.ui_session_seconds

    def log_in_now() -> tuple[str, dict[str, str]]:
        token, login = create_session(
            session, username=username, password=password, lifetime_seconds=lifetime
        )
        session.commit()
        return token, login.document()

    try:
        token, document = await run_in_threadpool(log_in_now)
    except AuthenticationError:
        throttle.failed(client, username)
        raise
    throttle.succeeded(username)
    response = json_response(200, document, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=lifetime,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.get("/ui/session")
def who_am_i(request: Request, session: Db) -> Response:
    """The current login (401 when there is none or it expired)."""
    login = find_session(session, request.cookies.get(COOKIE_NAME))
    return json_response(200, login.document(), headers={"Cache-Control": "no-store"})


@router.delete("/ui/session", status_code=204)
def log_out(request: Request, session: Db) -> Response:
    """Log out: the session is deleted and the cookie cleared."""
    delete_session(session, request.cookies.get(COOKIE_NAME))
    session.commit()
    response = Response(status_code=204)
    response.delete_cookie(
        COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )
    return response
