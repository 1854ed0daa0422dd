"""``/v1/rules``: list (``pack``, ``name``, ``action``, ``trigger``, ``enabled``, ``user``), get by
ref or id, create, update (the full document ``st2 rule enable|disable`` sends back), delete."""

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
from poundcake.engine.rbac.enforcement import require_rule_trigger_and_action
from poundcake.engine.rbac.resources import body_content_resource, content_resource_of
from poundcake.engine.rules.service import (
    RuleFilters,
    create_rule,
    delete_rule,
    find_rule,
    list_rules,
    rule_documents,
    update_rule,
)

router = APIRouter(tags=["rules"])


@router.get("/rules")
def list_all(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    pack: Annotated[str | None, Query()] = None,
    name: Annotated[str | None, Query()] = None,
    action: Annotated[str | None, Query()] = None,
    trigger: Annotated[str | None, Query()] = None,
    enabled: Annotated[str | None, Query()] = None,
    user: Annotated[str | None, Query()] = None,
    include_attributes: Annotated[str | None, Query()] = None,
    exclude_attributes: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Rules sorted by pack and name, with ``X-Total-Count``."""
    rbac.require("rule_list")
    filters = RuleFilters(
        pack=pack, name=name, action=action, trigger=trigger, enabled=truthy(enabled), user=user
    )
    total, rows = list_rules(session=session, filters=filters, offset=page.offset, limit=page.limit)
    page.headers(response, total)
    return [
        attribute_filter(document, include_attributes, exclude_attributes)
        for document in rule_documents(session=session, rules=rows)
    ]


@router.get("/rules/{ref_or_id}")
def get_one(ref_or_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One rule, its trigger expanded."""
    rule = find_rule(session=session, ref_or_id=ref_or_id)
    rbac.require_on(content_resource_of("rule", rule), "rule_view")
    return rule_documents(session=session, rules=[rule])[0]


@router.post("/rules", status_code=201)
def create(rbac: Rbac, session: Db, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Create a rule (disabled unless ``enabled: true``); a taken ref is a 409."""
    rbac.require_create(body_content_resource("rule", body), "rule_create")
    require_rule_trigger_and_action(rbac, body)
    rule = create_rule(session=session, document=body, user=rbac.user)
    session.commit()
    return rule_documents(session=session, rules=[rule])[0]


@router.put("/rules/{ref_or_id}")
def update(
    ref_or_id: str,
    rbac: Rbac,
    session: Db,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Replace a rule; its trigger is re-pointed if the trigger changed."""
    rule = find_rule(session=session, ref_or_id=ref_or_id)
    rbac.require_on(content_resource_of("rule", rule), "rule_modify")
    require_rule_trigger_and_action(rbac, body)
    rule = update_rule(session=session, rule=rule, document=body, user=rbac.user)
    session.commit()
    return rule_documents(session=session, rules=[rule])[0]


@router.delete("/rules/{ref_or_id}", status_code=204)
def delete(ref_or_id: str, rbac: Rbac, session: Db) -> Response:
    """Delete a rule; a trigger no other rule uses goes with it."""
    rule = find_rule(session=session, ref_or_id=ref_or_id)
    rbac.require_on(content_resource_of("rule", rule), "rule_delete")
    delete_rule(session=session, rule=rule)
    session.commit()
    return Response(status_code=204)
