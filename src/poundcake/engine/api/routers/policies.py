"""``/v1/policytypes`` (list with ``resource_type``, ``name``; get by ref or id) and
``/v1/policies`` (list with ``pack``, ``name``, ``resource_ref``, ``policy_type``; get by ref
or id; create, update, delete), as ``st2 policy`` and ``st2 policy-type`` use them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from poundcake.engine.api.dependencies import Db, Page, Rbac, attribute_filter, paging
from poundcake.engine.policies.service import (
    PolicyFilters,
    create_policy,
    delete_policy,
    find_policy,
    find_policy_type,
    list_policies,
    list_policy_types,
    policy_document,
    policy_type_document,
    update_policy,
)
from poundcake.engine.rbac.resources import (
    body_content_resource,
    content_resource_of,
    policy_type_resource,
)

router = APIRouter(tags=["policies"])
Text = Annotated[str | None, Query()]


@router.get("/policytypes")
def list_types(
    rbac: Rbac,
    session: Db,
    response: Response,
    resource_type: Text = None,
    name: Text = None,
    include_attributes: Text = None,
    exclude_attributes: Text = None,
) -> list[dict[str, Any]]:
    """Policy types sorted by resource type and name."""
    rbac.require("policy_type_list")
    rows = list_policy_types(session=session, resource_type=resource_type, name=name)
    response.headers["X-Total-Count"] = str(len(rows))
    return [
        attribute_filter(policy_type_document(row), include_attributes, exclude_attributes)
        for row in rows
    ]


@router.get("/policytypes/{ref_or_id}")
def get_type(ref_or_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One policy type."""
    policy_type = find_policy_type(session=session, ref_or_id=ref_or_id)
    rbac.require_on(
        policy_type_resource(policy_type.resource_type, policy_type.name), "policy_type_view"
    )
    return policy_type_document(policy_type)


@router.get("/policies")
def list_all(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    pack: Text = None,
    name: Text = None,
    resource_ref: Text = None,
    policy_type: Text = None,
    include_attributes: Text = None,
    exclude_attributes: Text = None,
) -> list[dict[str, Any]]:
    """Policies sorted by pack and name, with ``X-Total-Count``."""
    rbac.require("policy_list")
    filters = PolicyFilters(
        pack=pack, name=name, resource_ref=resource_ref, policy_type=policy_type
    )
    total, rows = list_policies(
        session=session, filters=filters, offset=page.offset, limit=page.limit
    )
    page.headers(response, total)
    return [
        attribute_filter(policy_document(row), include_attributes, exclude_attributes)
        for row in rows
    ]


@router.get("/policies/{ref_or_id}")
def get_one(ref_or_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One policy."""
    policy = find_policy(session=session, ref_or_id=ref_or_id)
    rbac.require_on(content_resource_of("policy", policy), "policy_view")
    return policy_document(policy)


@router.post("/policies", status_code=201)
def create(rbac: Rbac, session: Db, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """Create a policy; its parameters are checked against its type's schema."""
    rbac.require_create(body_content_resource("policy", body), "policy_create")
    policy = create_policy(session=session, document=body)
    session.commit()
    return policy_document(policy)


@router.put("/policies/{ref_or_id}")
def update(
    ref_or_id: str,
    rbac: Rbac,
    session: Db,
    body: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Replace a policy."""
    policy = find_policy(session=session, ref_or_id=ref_or_id)
    rbac.require_on(content_resource_of("policy", policy), "policy_modify")
    policy = update_policy(session=session, policy=policy, document=body)
    session.commit()
    return policy_document(policy)


@router.delete("/policies/{ref_or_id}", status_code=204)
def delete(ref_or_id: str, rbac: Rbac, session: Db) -> Response:
    """Delete a policy."""
    policy = find_policy(session=session, ref_or_id=ref_or_id)
    rbac.require_on(content_resource_of("policy", policy), "policy_delete")
    delete_policy(session=session, policy=policy)
    session.commit()
    return Response(status_code=204)
