"""``/v1/triggertypes`` and ``/v1/triggers``: lists and one by ref or id (``st2 trigger list``,
``get`` and ``getspecs``).

As in StackStorm, trigger types and triggers ask no permission beyond authentication."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from poundcake.engine.api.dependencies import CurrentCaller, Db, Page, attribute_filter, paging
from poundcake.engine.triggers.documents import trigger_document, trigger_type_document
from poundcake.engine.triggers.service import (
    find_trigger_by_ref_or_id,
    find_trigger_type,
    list_trigger_types,
    list_triggers,
)

router = APIRouter(tags=["triggers"])


@router.get("/triggertypes")
def list_types(
    _caller: CurrentCaller,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    pack: Annotated[str | None, Query()] = None,
    name: Annotated[str | None, Query()] = None,
    include_attributes: Annotated[str | None, Query()] = None,
    exclude_attributes: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Trigger types sorted by pack and name, with ``X-Total-Count``."""
    total, rows = list_trigger_types(
        session=session, offset=page.offset, limit=page.limit, pack=pack, name=name
    )
    page.headers(response, total)
    return [
        attribute_filter(trigger_type_document(row), include_attributes, exclude_attributes)
        for row in rows
    ]


@router.get("/triggertypes/{ref_or_id}")
def get_type(ref_or_id: str, _caller: CurrentCaller, session: Db) -> dict[str, Any]:
    """One trigger type."""
    return trigger_type_document(find_trigger_type(session=session, ref_or_id=ref_or_id))


@router.get("/triggers")
def list_all(
    _caller: CurrentCaller,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    type_ref: Annotated[str | None, Query(alias="type")] = None,
    pack: Annotated[str | None, Query()] = None,
    name: Annotated[str | None, Query()] = None,
    include_attributes: Annotated[str | None, Query()] = None,
    exclude_attributes: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Triggers, of one ``type`` if asked, with ``X-Total-Count``."""
    total, rows = list_triggers(
        session=session,
        offset=page.offset,
        limit=page.limit,
        type_ref=type_ref,
        pack=pack,
        name=name,
    )
    page.headers(response, total)
    return [
        attribute_filter(trigger_document(row), include_attributes, exclude_attributes)
        for row in rows
    ]


@router.get("/triggers/{ref_or_id}")
def get_one(ref_or_id: str, _caller: CurrentCaller, session: Db) -> dict[str, Any]:
    """One trigger."""
    return trigger_document(find_trigger_by_ref_or_id(session=session, ref_or_id=ref_or_id))
