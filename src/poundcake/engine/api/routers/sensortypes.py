"""``/v1/sensortypes``: list, get and put (enable or disable), for ``st2 sensor list``, ``get``,
``enable`` and ``disable``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from poundcake.engine.api.dependencies import (
    Db,
    Page,
    Rbac,
    attribute_filter,
    paging,
    truthy,
)
from poundcake.engine.rbac.resources import content_resource_of
from poundcake.engine.sensors.api_service import (
    find_sensor_type,
    list_sensor_types,
    sensor_type_documents,
    update_sensor_type,
)

router = APIRouter(tags=["sensors"])


@router.get("/sensortypes")
def list_all(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    pack: Annotated[str | None, Query()] = None,
    name: Annotated[str | None, Query()] = None,
    enabled: Annotated[str | None, Query()] = None,
    trigger: Annotated[str | None, Query()] = None,
    ids: Annotated[list[str] | None, Query(alias="id")] = None,
    include_attributes: Annotated[str | None, Query()] = None,
    exclude_attributes: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Sensor types sorted by pack and name, with their status and ``X-Total-Count``."""
    rbac.require("sensor_type_list")
    total, rows = list_sensor_types(
        session=session,
        offset=page.offset,
        limit=page.limit,
        pack=pack,
        name=name,
        enabled=truthy(enabled),
        trigger=trigger,
        ids=ids,
    )
    page.headers(response, total)
    return [
        attribute_filter(document, include_attributes, exclude_attributes)
        for document in sensor_type_documents(session=session, sensors=rows)
    ]


@router.get("/sensortypes/{ref_or_id}")
def get_one(ref_or_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One sensor type, with its status and last error."""
    sensor = find_sensor_type(session=session, ref_or_id=ref_or_id)
    rbac.require_on(content_resource_of("sensor_type", sensor), "sensor_type_view")
    return sensor_type_documents(session=session, sensors=[sensor])[0]


@router.put("/sensortypes/{ref_or_id}")
def update(
    ref_or_id: str,
    rbac: Rbac,
    session: Db,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Enable or disable a sensor; the containers start or stop it on their next round."""
    sensor = find_sensor_type(session=session, ref_or_id=ref_or_id)
    rbac.require_on(content_resource_of("sensor_type", sensor), "sensor_type_modify")
    sensor = update_sensor_type(session=session, sensor=sensor, document=body)
    session.commit()
    return sensor_type_documents(session=session, sensors=[sensor])[0]
