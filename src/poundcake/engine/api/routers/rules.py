"""``/v1/rules``: list (``pack``, ``name``, ``action``, ``trigger``, ``enabled``, ``user``), get by
ref or id, create, update (the full document ``st2 rule enable|disable`` sends back), delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from poundcake.engine.api.dependencies import (
    CurrentCaller,
    Db,
    Page,
    attribute_filter,
    paging,
    truthy,
)
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
    _caller: CurrentCaller,
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
def get_one(ref_or_id: str, _caller: CurrentCaller, session: Db) -> dict[str, Any]:
    """One rule, its trigger expanded."""
    rule = find_rule(session=session, ref_or_id=ref_or_id)
    return rule_documents(session=session, rules=[rule])[0]


@router.post("/rules", status_code=201)
def create(
    caller: CurrentCaller, session: Db, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Create a rule (disabled unless ``enabled: true``); a taken ref is a 409."""
    rule = create_rule(session=session, document=body, user=caller.user)
    session.commit()
    return rule_documents(session=session, rules=[rule])[0]


@router.put("/rules/{ref_or_id}")
def update(
    ref_or_id: str,
    caller: CurrentCaller,
    session: Db,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Replace a rule; its trigger is re-pointed if the trigger changed."""
    rule = find_rule(session=session, ref_or_id=ref_or_id)
    rule = update_rule(session=session, rule=rule, document=body, user=caller.user)
    session.commit()
    return rule_documents(session=session, rules=[rule])[0]


@router.delete("/rules/{ref_or_id}", status_code=204)
def delete(ref_or_id: str, _caller: CurrentCaller, session: Db) -> Response:
    """Delete a rule; a trigger no other rule uses goes with it."""
    delete_rule(session=session, rule=find_rule(session=session, ref_or_id=ref_or_id))
    session.commit()
    return Response(status_code=204)
