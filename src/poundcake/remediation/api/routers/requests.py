"""``/api/v1/requests/{request_id}``: the trail of one request, from receipt to each step."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from poundcake.remediation.api.dependencies import Db, RequestId
from poundcake.remediation.api.operator import Operator
from poundcake.remediation.api.responses import json_response
from poundcake.remediation.tracking.trail import request_trail

router = APIRouter(tags=["requests"])


@router.get("/requests/{trail_id}")
def get_trail(trail_id: str, _operator: Operator, session: Db, request_id: RequestId) -> Response:
    """The call, its alerts, trigger instances, rule enforcements, executions and extensions.

    The body's ``request_id`` is this lookup's own id; the trail is under ``trail``.
    """
    return json_response(200, {"request_id": request_id, "trail": request_trail(session, trail_id)})
