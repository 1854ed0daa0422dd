"""``/v1/apikeys``: create (the key is shown once), list, get by id or key, update, delete."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Query, Response

from poundcake.engine.api.dependencies import CurrentCaller, Db, Page, paging, truthy
from poundcake.engine.api.documents import api_key_document
from poundcake.engine.auth.models import ApiKeyDB
from poundcake.engine.auth.service import create_api_key, find_api_key, update_api_key
from poundcake.exceptions import ValidationError

router = APIRouter(tags=["apikeys"])


@router.post("/apikeys", status_code=201)
def create(
    caller: CurrentCaller, session: Db, body: Annotated[dict[str, Any] | None, Body()] = None
) -> dict[str, Any]:
    """Create a key for the caller (or ``user``); the answer carries ``key`` this once."""
    body = body or {}
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be an object")
    key_hash = body.get("key_hash") if body.get("key_hash") not in (None, "********") else None
    created = create_api_key(
        session, user=str(body.get("user") or caller.user), metadata=metadata, key_hash=key_hash
    )
    session.commit()
    document = api_key_document(created.record)
    document.pop("key_hash")
    document["key"] = created.key
    return document


@router.get("/apikeys")
def list_keys(
    _caller: CurrentCaller,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=50)],
    show_secrets: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """List keys, newest last; hashes masked unless ``show_secrets``."""
    total = session.scalar(sa.select(sa.func.count()).select_from(ApiKeyDB)) or 0
    query = sa.select(ApiKeyDB).order_by(ApiKeyDB.id).offset(page.offset)
    if page.limit is not None:
        query = query.limit(page.limit)
    page.headers(response, total)
    reveal = bool(truthy(show_secrets))
    return [api_key_document(row, show_secrets=reveal) for row in session.scalars(query)]


@router.get("/apikeys/{id_or_key}")
def get(
    id_or_key: str,
    _caller: CurrentCaller,
    session: Db,
    show_secrets: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """One key, found by the key itself or by id."""
    return api_key_document(
        find_api_key(session, id_or_key), show_secrets=bool(truthy(show_secrets))
    )


@router.put("/apikeys/{id_or_key}")
def update(
    id_or_key: str,
    _caller: CurrentCaller,
    session: Db,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Enable, disable or re-describe a key; the masked hash the CLI sends back is kept."""
    record = update_api_key(session, find_api_key(session, id_or_key), body)
    session.commit()
    return api_key_document(record)


@router.delete("/apikeys/{id_or_key}", status_code=204)
def delete(id_or_key: str, _caller: CurrentCaller, session: Db) -> Response:
    """Delete a key; it stops working at once."""
    session.delete(find_api_key(session, id_or_key))
    session.commit()
    return Response(status_code=204)
