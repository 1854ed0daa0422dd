"""``/v1/apikeys``: create (the key is shown once), list, get by id or key, update, delete.

With RBAC on, StackStorm's permissions apply (``api_key_create`` global, ``api_key_view``,
``_modify``, ``_delete`` on ``api_key:<hash>``, hashes shown to administrators only); giving a
key to another user also needs an administrator, which StackStorm does not ask.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Query, Response

from poundcake.engine.api.dependencies import Db, Page, Rbac, paging, truthy
from poundcake.engine.api.documents import api_key_document
from poundcake.engine.auth.models import ApiKeyDB
from poundcake.engine.auth.service import create_api_key, find_api_key, update_api_key
from poundcake.engine.rbac.resources import api_key_resource
from poundcake.exceptions import ValidationError

router = APIRouter(tags=["apikeys"])


@router.post("/apikeys", status_code=201)
def create(
    rbac: Rbac, session: Db, body: Annotated[dict[str, Any] | None, Body()] = None
) -> dict[str, Any]:
    """Create a key for the caller (or ``user``); the answer carries ``key`` this once."""
    body = body or {}
    rbac.require("api_key_create")
    rbac.require_admin_for_other_user(str(body["user"]) if body.get("user") else None)
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be an object")
    key_hash = body.get("key_hash") if body.get("key_hash") not in (None, "********") else None
    created = create_api_key(
        session, user=str(body.get("user") or rbac.user), metadata=metadata, key_hash=key_hash
    )
    session.commit()
    document = api_key_document(created.record)
    document.pop("key_hash")
    document["key"] = created.key
    return document


@router.get("/apikeys")
def list_keys(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=50)],
    show_secrets: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """List keys, newest last; hashes masked unless ``show_secrets``."""
    rbac.require("api_key_list")
    total = session.scalar(sa.select(sa.func.count()).select_from(ApiKeyDB)) or 0
    query = sa.select(ApiKeyDB).order_by(ApiKeyDB.id).offset(page.offset)
    if page.limit is not None:
        query = query.limit(page.limit)
    page.headers(response, total)
    reveal = bool(truthy(show_secrets)) and rbac.is_admin
    return [api_key_document(row, show_secrets=reveal) for row in session.scalars(query)]


@router.get("/apikeys/{id_or_key}")
def get(
    id_or_key: str,
    rbac: Rbac,
    session: Db,
    show_secrets: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """One key, found by the key itself or by id."""
    record = find_api_key(session, id_or_key)
    rbac.require_on(api_key_resource(record.key_hash), "api_key_view")
    return api_key_document(record, show_secrets=bool(truthy(show_secrets)) and rbac.is_admin)


@router.put("/apikeys/{id_or_key}")
def update(
    id_or_key: str,
    rbac: Rbac,
    session: Db,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Enable, disable or re-describe a key; the masked hash the CLI sends back is kept."""
    record = find_api_key(session, id_or_key)
    rbac.require_on(api_key_resource(record.key_hash), "api_key_modify")
    if body.get("user") and str(body["user"]) != record.user:
        rbac.require_admin_for_other_user(str(body["user"]))
    record = update_api_key(session, record, body)
    session.commit()
    return api_key_document(record)


@router.delete("/apikeys/{id_or_key}", status_code=204)
def delete(id_or_key: str, rbac: Rbac, session: Db) -> Response:
    """Delete a key; it stops working at once."""
    record = find_api_key(session, id_or_key)
    rbac.require_on(api_key_resource(record.key_hash), "api_key_delete")
    session.delete(record)
    session.commit()
    return Response(status_code=204)
