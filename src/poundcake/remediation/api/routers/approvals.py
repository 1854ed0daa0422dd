"""``/api/v1/approvals``: the approvals CABs asked for; approve or deny one.

An answer goes through the engine's inquiry (see :mod:`poundcake.remediation.approvals.
inquiries`), so it agrees with ``st2 inquiry respond``: an approval is answered once, and a
second answer, whichever way it comes, is refused with 409 and what the first answer was.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from starlette.responses import Response

from poundcake.remediation.api.dependencies import Api, Db, RequestId
from poundcake.remediation.api.operator import Operator
from poundcake.remediation.api.responses import json_response
from poundcake.remediation.api.schemas import (
    ApprovalAnswer,
    ApprovalBody,
    ApprovalsAnswer,
    ErrorAnswer,
    body,
)
from poundcake.remediation.approvals import service
from poundcake.remediation.approvals.inquiries import answer
from poundcake.remediation.engine_api import EngineClient

router = APIRouter(tags=["approvals"])
OptionalApprovalBody = Annotated[ApprovalBody | None, Body()]
# Who answered, when the body does not say: the API's callers share tokens, not names.
API_ANSWERER = "api"
Verb = Literal["approve", "deny"]


@router.get("/approvals", responses={200: {"model": ApprovalsAnswer}})
def list_all(
    _operator: Operator,
    session: Db,
    request_id: RequestId,
    state: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Approvals, newest first; ``state`` (pending, approved, denied, expired) filters."""
    items = service.list_approvals(session, state=state, limit=limit)
    answer_ = ApprovalsAnswer.model_validate({"request_id": request_id, "approvals": items})
    return json_response(200, body(answer_))


@router.get("/approvals/{approval_id}", responses={200: {"model": ApprovalAnswer}})
def get_one(approval_id: int, _operator: Operator, session: Db, request_id: RequestId) -> Response:
    """One approval."""
    document = service.approval_document(service.get_approval(session, approval_id))
    answer_ = ApprovalAnswer.model_validate({"request_id": request_id, "approval": document})
    return json_response(200, body(answer_))


def _answer(
    api: Api, request_id: str, approval_id: int, approved: bool, given: ApprovalBody | None
) -> Response:
    given = given or ApprovalBody()
    engine_api = EngineClient.from_settings(api.settings)
    try:
        document, released = answer(
            api.sessions,
            engine_api,
            approval_id,
            approved=approved,
            by=given.by or API_ANSWERER,
            via="api",
            comment=given.comment,
        )
    finally:
        engine_api.close()
    api.handoff.submit(released)
    answer_ = ApprovalAnswer.model_validate({"request_id": request_id, "approval": document})
    return json_response(200, body(answer_))


ANSWER_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": ApprovalAnswer},
    404: {"model": ErrorAnswer},
    409: {"model": ErrorAnswer},
}


@router.post("/approvals/{approval_id}/{verb}", responses=ANSWER_RESPONSES)
def respond(
    approval_id: int,
    verb: Verb,
    _operator: Operator,
    api: Api,
    request_id: RequestId,
    given: OptionalApprovalBody = None,
) -> Response:
    """``approve``: the CAB runs for the alert (if the other guards still let it); ``deny``: it
    never runs, and the episode is held."""
    return _answer(api, request_id, approval_id, verb == "approve", given)
