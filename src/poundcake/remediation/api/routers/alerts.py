"""``/api/v1/alerts``: alert episodes, filtered by state, status, severity and name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from poundcake.remediation.api.dependencies import Db, RequestId
from poundcake.remediation.api.operator import Operator
from poundcake.remediation.api.responses import json_response
from poundcake.remediation.api.schemas import AlertAnswer, AlertsPage, body
from poundcake.remediation.tracking.trail import (
    AlertFilters,
    alert_detail,
    alert_document,
    list_alerts,
)

router = APIRouter(tags=["alerts"])


@router.get("/alerts", responses={200: {"model": AlertsPage}})
def list_all(
    _operator: Operator,
    session: Db,
    request_id: RequestId,
    state: str | None = None,
    status: str | None = None,
    severity: str | None = None,
    name: str | None = None,
    limit: Annotated[int, Query()] = 50,
    offset: Annotated[int, Query()] = 0,
) -> Response:
    """One page of episodes, most recently updated first; ``X-Total-Count`` has the total."""
    filters = AlertFilters(state=state, alertmanager_status=status, severity=severity, name=name)
    total, alerts = list_alerts(session, filters, limit=limit, offset=offset)
    page = AlertsPage.model_validate(
        {"request_id": request_id, "total": total, "alerts": [alert_document(a) for a in alerts]}
    )
    return json_response(200, body(page), headers={"X-Total-Count": str(total)})


@router.get("/alerts/{alert_id}", responses={200: {"model": AlertAnswer}})
def get_one(alert_id: str, _operator: Operator, session: Db, request_id: RequestId) -> Response:
    """One episode with its deliveries, requests and remediation."""
    answer = AlertAnswer.model_validate(
        {"request_id": request_id, "alert": alert_detail(session, alert_id)}
    )
    return json_response(200, body(answer))
