"""What routes receive: the database session, the caller, the runtime, paging.

A route that writes calls ``session.commit()`` itself before answering, so a 2xx always means
committed; the session is rolled back and closed when the request ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from poundcake.engine.auth.service import authenticate_api_key, validate_token
from poundcake.engine.rbac.enforcement import (
    AccessDeniedError,
    Authorizer,
    always_allowed,
    load_user_permissions,
)
from poundcake.engine.runtime import EngineRuntime
from poundcake.exceptions import AuthenticationError, ValidationError


def get_runtime(request: Request) -> EngineRuntime:
    """The engine runtime the application was built with."""
    runtime: EngineRuntime = request.app.state.runtime
    return runtime


def get_session(request: Request) -> Iterator[Session]:
    """A session for this request; uncommitted work is rolled back at the end."""
    session = get_runtime(request).sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


Runtime = Annotated[EngineRuntime, Depends(get_runtime)]
Db = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class Caller:
    """Who is calling and how they proved it (for ``st2 whoami``)."""

    user: str
    method: str
    location: str
    token_expiry: datetime | None = None


def _credentials(request: Request) -> tuple[str | None, str | None, str]:
    headers, query = request.headers, request.query_params
    if headers.get("x-auth-token"):
        return headers["x-auth-token"], None, "header"
    if headers.get("st2-api-key"):
        return None, headers["st2-api-key"], "header"
    if query.get("x-auth-token"):
        return query["x-auth-token"], None, "query"
    if query.get("st2-api-key"):
        return None, query["st2-api-key"], "query"
    if request.cookies.get("auth-token"):
        return request.cookies["auth-token"], None, "cookie"
    return None, None, ""


def get_caller(request: Request, session: Db) -> Caller:
    """Authenticate with a token or an API key, in StackStorm's order of precedence."""
    token, key, location = _credentials(request)
    if token:
        record = validate_token(session, token)
        return Caller(record.user, "authentication token", location, record.expiry)
    if key:
        api_key = authenticate_api_key(session, key)
        return Caller(api_key.user, "API key", location)
    raise AuthenticationError("One of Token or API key required.")


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def get_authorizer(caller: CurrentCaller, session: Db, runtime: Runtime) -> Authorizer:
    """The caller's permissions for this request: read once, on the first check, and only
    with ``[rbac] enable``."""
    if not runtime.config.rbac.enable:
        return always_allowed(caller.user)
    return Authorizer(
        user=caller.user, enabled=True, load=lambda: load_user_permissions(session, caller.user)
    )


Rbac = Annotated[Authorizer, Depends(get_authorizer)]


@dataclass(frozen=True)
class Page:
    """``limit`` and ``offset`` as StackStorm reads them (``limit=-1`` or 0: everything)."""

    limit: int | None
    offset: int

    def headers(self, response: Response, total: int) -> None:
        """Set ``X-Total-Count`` and ``X-Limit``."""
        response.headers["X-Total-Count"] = str(total)
        if self.limit is not None:
            response.headers["X-Limit"] = str(self.limit)


def check_limit(rbac: Authorizer, limit: int, max_page_size: int) -> None:
    """StackStorm's ``validate_limit_query_param``: with RBAC on, only administrators ask for
    everything (``-1``) or more than ``[api] max_page_size``."""
    if not rbac.enabled or rbac.is_admin:
        return
    if limit in (-1, 0):
        raise AccessDeniedError(
            "Administrator access required to be able to specify limit=-1 and retrieve all the "
            "records"
        )
    if limit > max_page_size:
        raise AccessDeniedError(f'Limit "{limit}" specified, maximum value is "{max_page_size}"')


def paging(default_limit: int = 100, max_limit: int | None = None) -> object:
    """A dependency reading ``limit`` and ``offset`` with a per-resource default."""

    def dependency(request: Request, rbac: Rbac, runtime: Runtime) -> Page:
        query = request.query_params
        try:
            limit = int(query.get("limit", default_limit))
            offset = int(query.get("offset", 0))
        except ValueError:
            raise ValidationError("limit and offset must be integers") from None
        if "limit" in query:
            check_limit(rbac, limit, runtime.config.api.max_page_size)
        if offset < 0:
            raise ValidationError("offset must be 0 or more")
        if limit in (-1, 0):
            return Page(None, offset)
        if limit < -1:
            raise ValidationError(f'Limit, "{limit}" specified, must be a positive number.')
        if max_limit is not None and limit > max_limit:
            limit = max_limit
        return Page(limit, offset)

    return Depends(dependency)


def truthy(value: str | None) -> bool | None:
    """StackStorm query booleans: True/true/1 and False/false/0."""
    if value is None or value == "":
        return None
    return value.strip().lower() in ("true", "1", "yes")


def attribute_filter(
    document: dict[str, object], include: str | None, exclude: str | None
) -> dict[str, object]:
    """Apply ``include_attributes`` / ``exclude_attributes`` on top-level keys; ``id`` stays."""
    if include:
        wanted = {name.split(".", 1)[0] for name in include.split(",") if name}
        wanted.add("id")
        return {key: value for key, value in document.items() if key in wanted}
    if exclude:
        unwanted = {name.split(".", 1)[0] for name in exclude.split(",") if name} - {"id"}
        return {key: value for key, value in document.items() if key not in unwanted}
    return document
