"""``/v1/webhooks``: the registered webhooks (as Trigger documents), and ``POST`` to one.

``POST /v1/webhooks/<url>`` stores a trigger instance per trigger with that URL and answers 202
with the body it got; ``POST /v1/webhooks/st2`` takes ``{"trigger": ref, "payload": {...}}``.
Both need a token or API key, like every other route. ``GET /v1/webhooks`` ignores
``include_attributes``: the CLI asks for ``url``, which only ``parameters`` carries.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from poundcake.engine.api.dependencies import Db, Rbac, Runtime
from poundcake.engine.rbac.resources import webhook_resource
from poundcake.engine.triggers.documents import trigger_document
from poundcake.engine.triggers.instances import announce_trigger_instances
from poundcake.engine.webhooks.registry import normalise_url
from poundcake.engine.webhooks.service import (
    GENERIC_WEBHOOK,
    dispatch_generic,
    dispatch_webhook,
    list_webhooks,
    parse_webhook_body,
    webhook_triggers,
)

router = APIRouter(tags=["webhooks"])
TRIGGER_INSTANCE_HEADER = "X-Trigger-Instance-Id"


async def raw_body(request: Request) -> bytes:
    """The request body, read before the (synchronous) route runs."""
    return await request.body()


@router.get("/webhooks")
def list_all(rbac: Rbac, session: Db) -> list[dict[str, Any]]:
    """Every webhook trigger, with ``parameters.url``."""
    rbac.require("webhook_list")
    return [trigger_document(trigger) for trigger in list_webhooks(session=session)]


@router.get("/webhooks/{url:path}")
def get_one(url: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """The (first) trigger registered for ``url``."""
    triggers = webhook_triggers(session=session, url=url)
    rbac.require_on(webhook_resource(normalise_url(url)), "webhook_view")
    return trigger_document(triggers[0])


@router.post("/webhooks/{url:path}", status_code=202)
def post(
    url: str,
    request: Request,
    raw: Annotated[bytes, Depends(raw_body)],
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
) -> JSONResponse:
    """Store the request as trigger instances and echo its body."""
    rbac.require_on(webhook_resource(normalise_url(url)), "webhook_send")
    body = parse_webhook_body(raw, request.headers.get("content-type"))
    if normalise_url(url) == GENERIC_WEBHOOK:
        instances = [dispatch_generic(session=session, body=body)]
    else:
        instances = dispatch_webhook(
            session=session, url=url, headers=request.headers.items(), body=body
        )
    session.commit()
    announce_trigger_instances(runtime.publisher, instances)
    # StackStorm answers with the body; the ids are added for callers that keep a trail.
    ids = ",".join(instance.id for instance in instances)
    return JSONResponse(body, status_code=202, headers={TRIGGER_INSTANCE_HEADER: ids})
