"""``/v1/config_schemas`` and ``/v1/configs``: pack config schemas and values (``st2 pack config``).

``PUT /v1/configs/{pack}`` takes the values object itself, validates it against the pack's
schema, writes the pack's config file and stores it. Attributes the schema marks ``secret`` are
masked unless an administrator asks ``show_secrets=true``. Reading needs ``pack_list`` (lists) or
``pack_view`` on the pack, writing the global ``pack_config``, as in StackStorm.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Query, Response

from poundcake.engine.api.dependencies import Db, Page, Rbac, Runtime, paging, truthy
from poundcake.engine.packs import configs
from poundcake.engine.packs.documents import config_document, config_schema_document
from poundcake.engine.packs.locations import content_locations
from poundcake.engine.packs.models import ConfigDB, ConfigSchemaDB
from poundcake.engine.rbac.enforcement import Authorizer
from poundcake.engine.rbac.resources import pack_resource

router = APIRouter(tags=["configs"])


@router.get("/config_schemas")
def list_config_schemas(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
) -> list[dict[str, Any]]:
    """Every pack's config schema, sorted by pack."""
    rbac.require("pack_list")
    total = session.scalar(sa.select(sa.func.count()).select_from(ConfigSchemaDB)) or 0
    query = sa.select(ConfigSchemaDB).order_by(ConfigSchemaDB.pack).offset(page.offset)
    if page.limit is not None:
        query = query.limit(page.limit)
    page.headers(response, total)
    return [config_schema_document(row) for row in session.scalars(query)]


@router.get("/config_schemas/{pack}")
def get_config_schema(pack: str, _rbac: Rbac, session: Db) -> dict[str, Any]:
    """One pack's config schema; 404 when the pack has none (no permission asked, as in
    StackStorm)."""
    return config_schema_document(configs.get_config_schema(session, pack))


def _show(rbac: Authorizer, show_secrets: str | None) -> bool:
    """Secrets are shown to administrators who ask (StackStorm's ``_get_mask_secrets``)."""
    return bool(truthy(show_secrets)) and rbac.is_admin


def _document(row: ConfigDB, attributes: dict[str, Any] | None, show: bool) -> dict[str, Any]:
    values = dict(row.values or {})
    return config_document(row, values if show else configs.mask_secrets(values, attributes))


@router.get("/configs")
def list_configs(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    show_secrets: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Every pack's config, sorted by pack; secrets masked unless ``show_secrets``."""
    rbac.require("pack_list")
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
    show = _show(rbac, show_secrets)
    return [_document(row, attributes, show) for row, attributes in session.execute(query)]


@router.get("/configs/{pack}")
def get_config(
    pack: str,
    rbac: Rbac,
    session: Db,
    show_secrets: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """One pack's config; 404 when it has none."""
    rbac.require_on(pack_resource(pack), "pack_view")
    row = configs.get_config(session, pack)
    attributes = configs.schema_attributes(session, pack)
    return _document(row, attributes, _show(rbac, show_secrets))


@router.put("/configs/{pack}")
def set_config(
    pack: str,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    body: Annotated[Any, Body()],
    show_secrets: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Validate, write and store a pack's config values."""
    rbac.require("pack_config")
    row, attributes = configs.set_config(
        session=session,
        pack=pack,
        values=body,
        configs_dir=content_locations(runtime.config).configs_dir,
    )
    session.commit()
    return _document(row, attributes, _show(rbac, show_secrets))
