"""``/api/v1/requests/{request_id}``: the trail of one request, from receipt to each step."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from poundcake.remediation.api.dependencies import Db, RequestId
from poundcake.remediation.api.operator import Operator
from poundcake.remediation.api.responses import json_response
from poundcake.remediation.api.schemas import TrailAnswer, body
from poundcake.remediation.tracking.trail import request_trail

router = APIRouter(tags=["requests"])


@router.get("/requests/{trail_id}", responses={200: {"model": TrailAnswer}})
def get_trail(trail_id: str, _operator: Operator, session: Db, request_id: RequestId) -> Response:
    """The call, its alerts, trigger instances, rule enforcements, executions and extensions.

    The body's ``request_id`` is this lookup's own id; the trail is under ``trail``.
    """
    answer = TrailAnswer.model_validate(
        {"request_id": request_id, "trail": request_trail(session, trail_id)}
    )
    return json_response(200, body(answer))
