"""``/v1/ruleenforcements``: list (``rule_ref``, ``rule_id``, ``execution``,
``trigger_instance``, ``enforced_at_gt``/``_lt``; newest first) and get by id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from poundcake.engine.api.dependencies import Db, Page, Rbac, attribute_filter, paging
from poundcake.engine.rbac.resources import rule_enforcement_resource
from poundcake.engine.rules.documents import rule_enforcement_document
from poundcake.engine.rules.enforcements import (
    EnforcementFilters,
    get_rule_enforcement,
    list_rule_enforcements,
)
from poundcake.engine.triggers.instances import parse_timestamp

router = APIRouter(tags=["ruleenforcements"])


@router.get("/ruleenforcements")
def list_all(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    rule_ref: Annotated[str | None, Query()] = None,
    rule_id: Annotated[str | None, Query()] = None,
    execution: Annotated[str | None, Query()] = None,
    trigger_instance: Annotated[str | None, Query()] = None,
    enforced_at_gt: Annotated[str | None, Query()] = None,
    enforced_at_lt: Annotated[str | None, Query()] = None,
    include_attributes: Annotated[str | None, Query()] = None,
    exclude_attributes: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Rule enforcements, newest first, with ``X-Total-Count``."""
    rbac.require("rule_enforcement_list")
    filters = EnforcementFilters(
        rule_ref=rule_ref,
        rule_id=rule_id,
        execution=execution,
        trigger_instance=trigger_instance,
        enforced_after=(
            parse_timestamp(enforced_at_gt, "enforced_at_gt") if enforced_at_gt else None
        ),
        enforced_before=(
            parse_timestamp(enforced_at_lt, "enforced_at_lt") if enforced_at_lt else None
        ),
    )
    total, rows = list_rule_enforcements(
        session=session, filters=filters, offset=page.offset, limit=page.limit
    )
    page.headers(response, total)
    return [
        attribute_filter(rule_enforcement_document(row), include_attributes, exclude_attributes)
        for row in rows
    ]


@router.get("/ruleenforcements/{enforcement_id}")
def get_one(enforcement_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One rule enforcement."""
    enforcement = get_rule_enforcement(session=session, enforcement_id=enforcement_id)
    rbac.require_on(
        rule_enforcement_resource(enforcement.id, enforcement.rule or {}), "rule_enforcement_view"
    )
    return rule_enforcement_document(enforcement)
