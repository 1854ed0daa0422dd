"""``/v1/triggerinstances``: list (``trigger``, ``status``, ``timestamp_gt``/``_lt``; newest
first), get by id, and ``re_emit`` (a new pending copy).

As in StackStorm, reading trigger instances asks no permission beyond authentication."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from poundcake.engine.api.dependencies import (
    CurrentCaller,
    Db,
    Page,
    Rbac,
    Runtime,
    attribute_filter,
    paging,
)
from poundcake.engine.triggers.documents import trigger_instance_document
from poundcake.engine.triggers.instances import (
    announce_trigger_instances,
    get_trigger_instance,
    list_trigger_instances,
    parse_timestamp,
    re_emit_trigger_instance,
)

router = APIRouter(tags=["triggerinstances"])


@router.get("/triggerinstances")
def list_all(
    _caller: CurrentCaller,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    trigger: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query()] = None,
    timestamp_gt: Annotated[str | None, Query()] = None,
    timestamp_lt: Annotated[str | None, Query()] = None,
    include_attributes: Annotated[str | None, Query()] = None,
    exclude_attributes: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Trigger instances, newest first, with ``X-Total-Count``."""
    total, rows = list_trigger_instances(
        session=session,
        offset=page.offset,
        limit=page.limit,
        trigger=trigger,
        status=status,
        after=parse_timestamp(timestamp_gt, "timestamp_gt") if timestamp_gt else None,
        before=parse_timestamp(timestamp_lt, "timestamp_lt") if timestamp_lt else None,
    )
    page.headers(response, total)
    return [
        attribute_filter(trigger_instance_document(row), include_attributes, exclude_attributes)
        for row in rows
    ]


@router.get("/triggerinstances/{instance_id}")
def get_one(instance_id: str, _caller: CurrentCaller, session: Db) -> dict[str, Any]:
    """One trigger instance."""
    return trigger_instance_document(get_trigger_instance(session=session, instance_id=instance_id))


@router.post("/triggerinstances/{instance_id}/re_emit")
def re_emit(instance_id: str, rbac: Rbac, session: Db, runtime: Runtime) -> dict[str, Any]:
    """Emit an instance's payload again, as a new pending instance. StackStorm asks no
    permission here; with RBAC on this engine asks for an administrator, since the copy runs
    every rule that matches it (docs/compatibility.md)."""
    rbac.require_admin()
    copy = re_emit_trigger_instance(session=session, instance_id=instance_id)
    session.commit()
    announce_trigger_instances(runtime.publisher, [copy])
    return {
        "message": f"Trigger instance {instance_id} succesfully re-sent.",
        "payload": copy.payload,
    }
