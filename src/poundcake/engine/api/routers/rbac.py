"""``/v1/rbac/roles``, ``/v1/rbac/role_assignments`` and ``/v1/rbac/permission_types``, read
only, as ``st2 role`` and ``st2 role-assignment`` use them.

As in StackStorm, with RBAC on only administrators (``system_admin``, ``admin``) call these, but a
user may read their own role assignments; with RBAC off (StackStorm's ``noop`` backend) every
authenticated caller may.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from poundcake.engine.api.dependencies import Db, Page, Rbac, paging, truthy
from poundcake.engine.rbac.service import (
    AssignmentFilters,
    assignment_document,
    find_assignment,
    find_role,
    list_assignments,
    list_roles,
    permission_types,
    role_documents,
)

router = APIRouter(tags=["rbac"])
Text = Annotated[str | None, Query()]


@router.get("/rbac/roles")
def roles(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    name: Text = None,
    system: Text = None,
) -> list[dict[str, Any]]:
    """Roles sorted by name (``system=True``: the system roles only)."""
    rbac.require_admin()
    total, rows = list_roles(
        session=session, name=name, system=truthy(system), offset=page.offset, limit=page.limit
    )
    page.headers(response, total)
    return role_documents(session=session, roles=rows)


@router.get("/rbac/roles/{name_or_id}")
def role(name_or_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One role by id or name, with its permission grants."""
    rbac.require_admin()
    [document] = role_documents(
        session=session, roles=[find_role(session=session, name_or_id=name_or_id)]
    )
    return document


@router.get("/rbac/role_assignments")
def role_assignments(
    rbac: Rbac,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    user: Text = None,
    role: Text = None,
    source: Text = None,
    remote: Text = None,
) -> list[dict[str, Any]]:
    """Role assignments, filtered by ``user``, ``role``, ``source`` and ``remote``."""
    rbac.require_admin_or_self(user)
    filters = AssignmentFilters(user=user, role=role, source=source, remote=truthy(remote))
    total, rows = list_assignments(
        session=session, filters=filters, offset=page.offset, limit=page.limit
    )
    page.headers(response, total)
    return [assignment_document(row) for row in rows]


@router.get("/rbac/role_assignments/{assignment_id}")
def role_assignment(assignment_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One role assignment (a user may read their own)."""
    row = find_assignment(session=session, assignment_id=assignment_id)
    rbac.require_admin_or_self(row.user)
    return assignment_document(row)


@router.get("/rbac/permission_types")
def all_permission_types(rbac: Rbac) -> dict[str, Any]:
    """Every resource type's permission types with their descriptions."""
    rbac.require_admin()
    return permission_types()


@router.get("/rbac/permission_types/{resource_type}")
def resource_permission_types(resource_type: str, rbac: Rbac) -> dict[str, Any]:
    """One resource type's permission types with their descriptions."""
    rbac.require_admin()
    return permission_types(resource_type)
