"""``POST /api/v1/webhook`` (and ``/webhook``): Alertmanager's notifications.

The bearer token is checked before the body is read; a body over ``POUNDCAKE_MAX_BODY_BYTES``
is refused (413) from its ``Content-Length`` or as soon as the streamed bytes pass the limit.
The API call, the alert episodes and their deliveries are committed in one transaction before
the 202, with no more such transactions at once than the pool keeps connections (``slots.py``);
the delivery ids are then handed to the task queue by a background thread, so the broker never
delays the answer (best effort: the relay re-sends whatever stays unprocessed).
Database unavailable: 503 with ``Retry-After``, which Alertmanager retries.
"""

from __future__ import annotations

import logging
from functools import partial

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from poundcake.remediation.api.calls import call_record, request_info
from poundcake.remediation.api.dependencies import get_api
from poundcake.remediation.api.responses import error_response, json_response
from poundcake.remediation.api.schemas import RejectedAlert, WebhookAccepted, body
from poundcake.remediation.intake.payload import (
    PayloadError,
    PayloadTooLargeError,
    WebhookPayload,
    parse_webhook,
)
from poundcake.remediation.intake.service import WEBHOOK_PATHS, Accepted, accept_webhook

logger = logging.getLogger(__name__)

WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="poundcake"'}

router = APIRouter(tags=["alertmanager"])


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise PayloadError("Content-Length is not a number")
        if int(declared) > limit:
            raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise PayloadError("the client disconnected before sending the whole body") from None
    return b"".join(chunks)


def accepted_body(accepted: Accepted, payload: WebhookPayload) -> dict[str, object]:
    """The 202 body."""
    answer = WebhookAccepted(
        request_id=accepted.request_id,
        status="accepted",
        accepted=len(payload.alerts),
        deliveries=len(accepted.delivery_ids),
        rejected=[RejectedAlert(index=item.index, error=item.error) for item in payload.rejected],
        truncated_alerts=payload.truncated_alerts,
    )
    return body(answer)


async def receive_webhook(request: Request) -> Response:
    """Store an Alertmanager notification and answer 202 once it is committed."""
    api = get_api(request)
    info = request_info(request)
    problem = api.webhook_auth.problem(request.headers.get("authorization"))
    if problem is not None:
        return error_response(request, 401, problem, headers=WWW_AUTHENTICATE)
    body = await read_body(request, api.settings.max_body_bytes)
    payload = parse_webhook(body, max_alerts=api.settings.max_alerts_per_request)
    if payload.truncated_alerts:
        logger.warning(
            "Alertmanager left %d alerts out of a notification to %s (max_alerts)",
            payload.truncated_alerts,
            payload.receiver,
        )
    accept = partial(
        accept_webhook,
        api.sessions,
        payload=payload,
        call=call_record(request.scope, info, body_size=len(body)),
        client_chose_id=info.client_chose_id,
        started=info.started,
    )
    accepted = await run_in_threadpool(api.intake_slots.run, accept)
    if accepted.request_id != info.request_id:
        info.use_request_id(accepted.request_id)
    info.recorded = True
    api.handoff.submit(accepted.delivery_ids)
    return json_response(202, accepted_body(accepted, payload))


for _path in WEBHOOK_PATHS:
    router.add_api_route(
        _path,
        receive_webhook,
        methods=["POST"],
        status_code=202,
        responses={202: {"model": WebhookAccepted}},
        include_in_schema=_path == WEBHOOK_PATHS[0],
    )
