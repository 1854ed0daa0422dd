"""``/v1/inquiries``: the inquiries waiting for a response (list, get) and answering one (PUT).

What ``st2 inquiry list|get|respond`` calls. Documents are StackStorm's ``{id, route, ttl, users,
roles, schema}``; errors are its messages and codes (404 unknown id, 400 not an inquiry, timed
out, already answered or a response that does not fit the schema, 403 a user not allowed).
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Response

from poundcake.engine.api.dependencies import Db, Page, Rbac, Runtime, paging
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.inquiries.service import (
    announce_answered,
    get_inquiry,
    list_inquiries,
    respond,
)
from poundcake.engine.rbac.enforcement import Authorizer
from poundcake.engine.rbac.resources import inquiry_resource
from poundcake.exceptions import ValidationError

router = APIRouter(tags=["inquiries"])
# StackStorm's API default for this list (the CLI asks for 50).
DEFAULT_LIMIT = 20
INQUIRY_FIELDS = ("route", "ttl", "users", "roles", "schema")


def inquiry_document(execution: ExecutionDB) -> dict[str, Any]:
    """An inquiry as StackStorm's ``InquiryResponseAPI`` shows it."""
    result = execution.result if isinstance(execution.result, dict) else {}
    return {"id": execution.id, **{name: result.get(name) for name in INQUIRY_FIELDS}}


@router.get("/inquiries")
def list_all(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=DEFAULT_LIMIT)],
) -> list[dict[str, Any]]:
    """Inquiries waiting for a response, newest first, with ``X-Total-Count``."""
    rbac.require("inquiry_list")
    total, rows = list_inquiries(session, limit=page.limit, offset=page.offset)
    page.headers(response, total)
    return [inquiry_document(row) for row in rows]


def _check(session: Db, rbac: Authorizer, inquiry_id: str, permission_type: str) -> None:
    """StackStorm's check on one inquiry: a grant on inquiries, or ``action_execute`` on the
    workflow that asked it."""
    if not rbac.enabled:
        return
    execution = session.get(ExecutionDB, inquiry_id)
    if execution is None:
        return  # the route answers StackStorm's 404
    parent_action = None
    if execution.parent:
        parent_action = session.scalar(
            sa.select(ExecutionDB.action).where(ExecutionDB.id == execution.parent)
        )
    rbac.require_on(inquiry_resource(parent_action), permission_type)


@router.get("/inquiries/{inquiry_id}")
def get_one(inquiry_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One inquiry that waits for a response."""
    _check(session, rbac, inquiry_id, "inquiry_view")
    return inquiry_document(get_inquiry(session, inquiry_id))


@router.put("/inquiries/{inquiry_id}")
def put(
    inquiry_id: str,
    rbac: Rbac,
    session: Db,
    runtime: Runtime,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    """Answer an inquiry: ``{"id": ..., "response": {...}}``; its workflow resumes."""
    body = body or {}
    for name in ("id", "response"):
        if name not in body:
            raise ValidationError(f"'{name}' is a required property")
    _check(session, rbac, inquiry_id, "inquiry_respond")
    answered = respond(
        session,
        inquiry_id,
        body["response"],
        user=rbac.user,
        user_roles=rbac.permissions.roles if rbac.enabled else None,
        max_result_bytes=runtime.config.actionrunner.max_result_bytes,
    )
    session.commit()
    announce_answered(runtime.publisher, answered)
    return {"id": inquiry_id, "response": body["response"]}
