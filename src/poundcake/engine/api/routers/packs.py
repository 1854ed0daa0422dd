"""``/v1/packs``: list, get, register from disk, install and remove, and the pack index.

Install and remove answer 202 with the id of an execution of ``packs.install`` or
``packs.uninstall``, which the scheduler and an action runner run like any other; the CLI waits
for it on the stream. An install request is checked here first (each pack and its dependencies
fetched into a scratch directory and checked: sources, versions, conflicts, the packs
directory), so what cannot work is a 400 with its reason rather than a failed execution, whose
details ``st2 pack install`` 3.9.0 cannot print for a runner that is not orquesta or
action-chain. The action then fetches again where it runs. ``/packs/index`` and
``/packs/index/search`` read ``[content] index_url``.
"""

from __future__ import annotations

import logging
from email.utils import formatdate
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Header, Query, Response
from fastapi.responses import JSONResponse

from poundcake.engine.api.dependencies import (
    Db,
    Page,
    Rbac,
    Runtime,
    attribute_filter,
    paging,
)
from poundcake.engine.executions.service import request_execution
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.messaging import hand_over
from poundcake.engine.packs.documents import pack_document
from poundcake.engine.packs.index import fetch_index, find_pack, load_index, search_index
from poundcake.engine.packs.install import check_install
from poundcake.engine.packs.locations import content_locations
from poundcake.engine.packs.models import PackDB
from poundcake.engine.packs.registration import register_packs
from poundcake.engine.packs.removal import check_uninstall
from poundcake.engine.packs.views import pack_file, pack_files
from poundcake.engine.rbac.enforcement import Authorizer
from poundcake.engine.rbac.resources import action_resource, pack_resource
from poundcake.exceptions import NotFoundError, ValidationError

logger = logging.getLogger(__name__)

router = APIRouter(tags=["packs"])
INSTALL_ACTION = "packs.install"
UNINSTALL_ACTION = "packs.uninstall"


def _find(session: Db, ref_or_id: str, rbac: Authorizer) -> PackDB:
    """A pack by ref or id that the caller may view."""
    pack = session.scalar(sa.select(PackDB).where(PackDB.ref == ref_or_id))
    pack = pack or session.get(PackDB, ref_or_id)
    if pack is None:
        raise NotFoundError(f'Resource with a ref or id "{ref_or_id}" not found')
    rbac.require_on(pack_resource(pack.ref), "pack_view")
    return pack


def _names(body: dict[str, Any], key: str = "packs") -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not value:
        raise ValidationError(f"'{key}' must be a non-empty list of strings")
    if not all(isinstance(item, str) and item.strip() for item in value):
        raise ValidationError(f"'{key}' must be a non-empty list of strings")
    return [item.strip() for item in value]


@router.get("/packs")
def list_packs(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    name: Annotated[str | None, Query()] = None,
    ref: Annotated[str | None, Query()] = None,
    include_attributes: Annotated[str | None, Query()] = None,
    exclude_attributes: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Registered packs sorted by ref, with ``X-Total-Count``."""
    rbac.require("pack_list")
    conditions = []
    if name:
        conditions.append(PackDB.name == name)
    if ref:
        conditions.append(PackDB.ref == ref)
    total = session.scalar(sa.select(sa.func.count()).select_from(PackDB).where(*conditions)) or 0
    query = sa.select(PackDB).where(*conditions).order_by(PackDB.ref).offset(page.offset)
    if page.limit is not None:
        query = query.limit(page.limit)
    page.headers(response, total)
    return [
        attribute_filter(pack_document(row), include_attributes, exclude_attributes)
        for row in session.scalars(query)
    ]


@router.post("/packs/register")
def register(
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, int]:
    """Register packs from disk (all of them unless ``packs`` names some); counts per kind."""
    rbac.require("pack_register")
    body = body or {}
    packs = _names(body) if body.get("packs") else None
    types = body.get("types")
    if types is not None and not (
        isinstance(types, list) and all(isinstance(kind, str) for kind in types)
    ):
        raise ValidationError("'types' must be a list of strings")
    config = runtime.config
    counts = register_packs(
        session=session,
        locations=content_locations(config),
        packs=packs,
        types=types,
        system_user=config.system_user,
    )
    session.commit()
    return counts


def _request(
    session: Db, runtime: Runtime, action_ref: str, parameters: dict[str, Any], user: str
) -> JSONResponse:
    cipher = DatastoreCipher.from_key_file(runtime.config.datastore_key_path)
    requested = request_execution(
        session, action_ref=action_ref, parameters=parameters, user=user, cipher=cipher
    )
    session.commit()
    hand_over(runtime.publisher, requested.liveaction_id, requested.execution_id)
    logger.info("Requested %s as execution %s", action_ref, requested.execution_id)
    return JSONResponse({"execution_id": requested.execution_id}, status_code=202)


@router.post("/packs/install", status_code=202)
def install(
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    body: Annotated[dict[str, Any], Body()],
) -> JSONResponse:
    """Check the request, then request a ``packs.install`` execution; answer its id."""
    rbac.require("pack_install")
    rbac.require_on(action_resource(INSTALL_ACTION), "action_execute")
    packs = _names(body)
    force = bool(body.get("force", False))
    skip_dependencies = bool(body.get("skip_dependencies", False))
    check_install(
        session=session,
        locations=content_locations(runtime.config),
        sources=packs,
        force=force,
        skip_dependencies=skip_dependencies,
    )
    parameters = {"packs": packs, "force": force, "skip_dependencies": skip_dependencies}
    return _request(session, runtime, INSTALL_ACTION, parameters, rbac.user)


@router.post("/packs/uninstall", status_code=202)
def uninstall(
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    body: Annotated[dict[str, Any], Body()],
) -> JSONResponse:
    """Refuse the system packs, then request a ``packs.uninstall`` execution; answer its id."""
    rbac.require("pack_uninstall")
    rbac.require_on(action_resource(UNINSTALL_ACTION), "action_execute")
    packs = _names(body)
    check_uninstall(packs)
    return _request(session, runtime, UNINSTALL_ACTION, {"packs": packs}, rbac.user)


@router.post("/packs/index/search")
def search_packs_index(
    rbac: Rbac, runtime: Runtime, body: Annotated[dict[str, Any], Body()]
) -> Any:
    """``{"query": ...}``: the index's packs that match; ``{"pack": name}``: that pack, or []."""
    rbac.require("pack_search")
    urls = content_locations(runtime.config).index_urls
    if "query" in body:
        return search_index(urls, str(body["query"]))
    name = body.get("pack")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("'query' or 'pack' is required")
    return find_pack(urls, name.strip()) or []


@router.get("/packs/index")
def packs_index(rbac: Rbac, runtime: Runtime) -> dict[str, Any]:
    """The merged pack index and each index's status."""
    rbac.require("pack_search")
    index = load_index(content_locations(runtime.config).index_urls)
    return {"status": index.status, "index": index.packs}


@router.get("/packs/index/health")
def packs_index_health(rbac: Rbac, runtime: Runtime) -> dict[str, Any]:
    """How many indexes answered, the errors of the others, and how many packs they hold."""
    rbac.require("pack_views_index_health")
    index = fetch_index(content_locations(runtime.config).index_urls)
    errors: dict[str, int] = {}
    for status in index.status:
        if status["error"]:
            errors[status["error"]] = errors.get(status["error"], 0) + 1
    valid = sum(1 for status in index.status if not status["error"])
    return {
        "indexes": {
            "count": len(index.status),
            "valid": valid,
            "invalid": len(index.status) - valid,
            "errors": errors,
            "status": index.status,
        },
        "packs": {"count": sum(status["packs"] for status in index.status)},
    }


@router.get("/packs/views/files/{ref_or_id}")
def pack_files_view(ref_or_id: str, rbac: Rbac, session: Db) -> list[dict[str, Any]]:
    """The content of every text file of a pack."""
    return pack_files(_find(session, ref_or_id, rbac))


@router.get("/packs/views/file/{ref_or_id}/{file_path:path}")
def pack_file_view(
    ref_or_id: str,
    file_path: str,
    rbac: Rbac,
    session: Db,
    if_none_match: Annotated[str | None, Header()] = None,
    if_modified_since: Annotated[str | None, Header()] = None,
) -> Response:
    """One file of a pack, with ``ETag`` and ``Last-Modified``; 304 when unchanged."""
    found = pack_file(_find(session, ref_or_id, rbac), file_path)
    headers = {
        "ETag": repr(found.modified),
        "Last-Modified": formatdate(found.modified, usegmt=True),
    }
    unchanged = (
        if_none_match == headers["ETag"]
        if if_none_match
        else if_modified_since == headers["Last-Modified"]
    )
    if unchanged:
        return Response(status_code=304, headers=headers)
    return Response(found.content, media_type=found.content_type, headers=headers)


# After /packs/index, which this would otherwise answer.
@router.get("/packs/{ref_or_id}")
def get_pack(ref_or_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One pack, by ref or id."""
    return pack_document(_find(session, ref_or_id, rbac))
