"""``POST /tokens`` (st2auth): HTTP Basic credentials for a token."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from poundcake.engine.api.dependencies import Db, Runtime
from poundcake.engine.api.documents import token_document
from poundcake.engine.api.errors import fault
from poundcake.engine.auth.service import issue_token
from poundcake.engine.auth.users import authenticate

router = APIRouter(tags=["auth"])
LISTENER = "auth"
PREFIX = ""
INVALID = "Invalid or missing credentials"


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


@router.post("/tokens", status_code=201)
def create_token(
    request: Request,
    session: Db,
    runtime: Runtime,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> Any:
    """Issue a token; an ``X-Auth-Token`` header the CLI may send along is ignored."""
    credentials = _basic(request)
    if credentials is None or not authenticate(
        session, name=credentials[0], password=credentials[1]
    ):
        return fault(401, INVALID)
    ttl = (body or {}).get("ttl")
    if ttl is not None and not isinstance(ttl, int):
        return fault(400, "ttl must be an integer")
    issued = issue_token(
        session, user=credentials[0], ttl=ttl, max_ttl=runtime.config.auth.token_ttl
    )
    session.commit()
    response = JSONResponse(token_document(issued.record, issued.token), status_code=201)
    response.headers["X-API-URL"] = f"http://{runtime.config.api.host}:{runtime.config.api.port}"
    return response
