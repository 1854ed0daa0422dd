"""``/v1/config_schemas`` and ``/v1/configs``: pack config schemas and values (``st2 pack config``).

``PUT /v1/configs/{pack}`` takes the values object itself, validates it against the pack's
schema, writes the pack's config file and stores it. Attributes the schema marks ``secret`` are
masked unless ``show_secrets=true``; every authenticated caller is an administrator here.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Query, Response

from poundcake.engine.api.dependencies import CurrentCaller, Db, Page, Runtime, paging, truthy
from poundcake.engine.packs import configs
from poundcake.engine.packs.documents import config_document, config_schema_document
from poundcake.engine.packs.locations import content_locations
from poundcake.engine.packs.models import ConfigDB, ConfigSchemaDB

router = APIRouter(tags=["configs"])


@router.get("/config_schemas")
def list_config_schemas(
    _caller: CurrentCaller,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
) -> list[dict[str, Any]]:
    """Every pack's config schema, sorted by pack."""
    total = session.scalar(sa.select(sa.func.count()).select_from(ConfigSchemaDB)) or 0
    query = sa.select(ConfigSchemaDB).order_by(ConfigSchemaDB.pack).offset(page.offset)
    if page.limit is not None:
        query = query.limit(page.limit)
    page.headers(response, total)
    return [config_schema_document(row) for row in session.scalars(query)]


@router.get("/config_schemas/{pack}")
def get_config_schema(pack: str, _caller: CurrentCaller, session: Db) -> dict[str, Any]:
    """One pack's config schema; 404 when the pack has none."""
    return config_schema_document(configs.get_config_schema(session, pack))


def _document(row: ConfigDB, attributes: dict[str, Any] | None, show: bool) -> dict[str, Any]:
    values = dict(row.values or {})
    return config_document(row, values if show else configs.mask_secrets(values, attributes))


@router.get("/configs")
def list_configs(
    _caller: CurrentCaller,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    show_secrets: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Every pack's config, sorted by pack; secrets masked unless ``show_secrets``."""
    total = session.scalar(sa.select(sa.func.count()).select_from(ConfigDB)) or 0
    query = (
        sa.select(ConfigDB, ConfigSchemaDB.attributes)
        .outerjoin(ConfigSchemaDB, ConfigSchemaDB.pack == ConfigDB.pack)
        .order_by(ConfigDB.pack)
        .offset(page.offset)
    )
    if page.limit is not None:
        query = query.limit(page.limit)
    page.headers(response, total)
    show = bool(truthy(show_secrets))
    return [_document(row, attributes, show) for row, attributes in session.execute(query)]


@router.get("/configs/{pack}")
def get_config(
    pack: str,
    _caller: CurrentCaller,
    session: Db,
    show_secrets: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """One pack's config; 404 when it has none."""
    row = configs.get_config(session, pack)
    attributes = configs.schema_attributes(session, pack)
    return _document(row, attributes, bool(truthy(show_secrets)))


@router.put("/configs/{pack}")
def set_config(
    pack: str,
    _caller: CurrentCaller,
    session: Db,
    runtime: Runtime,
    body: Annotated[Any, Body()],
    show_secrets: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Validate, write and store a pack's config values."""
    row, attributes = configs.set_config(
        session=session,
        pack=pack,
        values=body,
        configs_dir=content_locations(runtime.config).configs_dir,
    )
    session.commit()
    return _document(row, attributes, bool(truthy(show_secrets)))
