"""``/v1/actionalias``: list (``pack``, ``name``), get by ref or id, create, update, delete,
``match`` (which alias a command runs) and ``help`` (the display strings chat adapters show)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from poundcake.engine.aliases.documents import alias_document
from poundcake.engine.aliases.matching import help_strings, match_command
from poundcake.engine.aliases.service import (
    AliasFilters,
    create_alias,
    delete_alias,
    find_alias,
    list_aliases,
    update_alias,
)
from poundcake.engine.api.dependencies import Db, Page, Rbac, attribute_filter, paging
from poundcake.engine.rbac.resources import body_content_resource, content_resource_of
from poundcake.exceptions import ValidationError

router = APIRouter(tags=["actionalias"])


@router.get("/actionalias")
def list_all(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    pack: Annotated[str | None, Query()] = None,
    name: Annotated[str | None, Query()] = None,
    include_attributes: Annotated[str | None, Query()] = None,
    exclude_attributes: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Aliases sorted by pack and name, with ``X-Total-Count``."""
    rbac.require("action_alias_list")
    filters = AliasFilters(pack=pack, name=name)
    total, rows = list_aliases(
        session=session, filters=filters, offset=page.offset, limit=page.limit
    )
    page.headers(response, total)
    return [
        attribute_filter(alias_document(alias), include_attributes, exclude_attributes)
        for alias in rows
    ]


@router.get("/actionalias/help")
def help_(
    rbac: Rbac,
    session: Db,
    filter: Annotated[str, Query()] = "",
    pack: Annotated[str, Query()] = "",
    limit: Annotated[int, Query()] = 0,
    offset: Annotated[int, Query()] = 0,
) -> dict[str, Any]:
    """The help strings of enabled aliases."""
    rbac.require("action_alias_help")
    return help_strings(session=session, search=filter, pack=pack, limit=limit, offset=offset)


@router.get("/actionalias/{ref_or_id}")
def get_one(ref_or_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One alias."""
    alias = find_alias(session=session, ref_or_id=ref_or_id)
    rbac.require_on(content_resource_of("action_alias", alias), "action_alias_view")
    return alias_document(alias)


@router.post("/actionalias/match")
def match(rbac: Rbac, session: Db, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """The alias and format that ``command`` matches; 400 if none or several do."""
    rbac.require("action_alias_match")
    command = body.get("command")
    if not isinstance(command, str):
        raise ValidationError("'command' is a required property")
    found = match_command(session=session, command=command)
    return {
        "actionalias": alias_document(found.alias),
        "display": found.choice.display,
        "representation": found.choice.representation,
    }


@router.post("/actionalias", status_code=201)
def create(rbac: Rbac, session: Db, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Create an alias; a taken ref is a 409."""
    rbac.require_create(body_content_resource("action_alias", body), "action_alias_create")
    alias = create_alias(session=session, document=body)
    session.commit()
    return alias_document(alias)


@router.put("/actionalias/{ref_or_id}")
def update(
    ref_or_id: str, rbac: Rbac, session: Db, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Replace an alias."""
    alias = find_alias(session=session, ref_or_id=ref_or_id)
    rbac.require_on(content_resource_of("action_alias", alias), "action_alias_modify")
    alias = update_alias(session=session, alias=alias, document=body)
    session.commit()
    return alias_document(alias)


@router.delete("/actionalias/{ref_or_id}", status_code=204)
def delete(ref_or_id: str, rbac: Rbac, session: Db) -> Response:
    """Delete an alias."""
    alias = find_alias(session=session, ref_or_id=ref_or_id)
    rbac.require_on(content_resource_of("action_alias", alias), "action_alias_delete")
    delete_alias(session=session, alias=alias)
    session.commit()
    return Response(status_code=204)
