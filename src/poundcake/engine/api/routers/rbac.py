"""``/v1/rbac/roles``, ``/v1/rbac/role_assignments`` and ``/v1/rbac/permission_types``, read
only, as ``st2 role`` and ``st2 role-assignment`` use them.

StackStorm lets only admins (or a user reading their own assignments) call these; with RBAC off
(its ``noop`` backend, the only mode the engine runs in until enforcement exists) every
authenticated caller may, as there.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from poundcake.engine.api.dependencies import CurrentCaller, Db, Page, paging, truthy
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
    _caller: CurrentCaller,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    name: Text = None,
    system: Text = None,
) -> list[dict[str, Any]]:
    """Roles sorted by name (``system=True``: the system roles only)."""
    total, rows = list_roles(
        session=session, name=name, system=truthy(system), offset=page.offset, limit=page.limit
    )
    page.headers(response, total)
    return role_documents(session=session, roles=rows)


@router.get("/rbac/roles/{name_or_id}")
def role(name_or_id: str, _caller: CurrentCaller, session: Db) -> dict[str, Any]:
    """One role by id or name, with its permission grants."""
    [document] = role_documents(
        session=session, roles=[find_role(session=session, name_or_id=name_or_id)]
    )
    return document


@router.get("/rbac/role_assignments")
def role_assignments(
    _caller: CurrentCaller,
    session: Db,
    response: Response,
    page: Annotated[Page, paging(default_limit=100)],
    user: Text = None,
    role: Text = None,
    source: Text = None,
    remote: Text = None,
) -> list[dict[str, Any]]:
    """Role assignments, filtered by ``user``, ``role``, ``source`` and ``remote``."""
    filters = AssignmentFilters(user=user, role=role, source=source, remote=truthy(remote))
    total, rows = list_assignments(
        session=session, filters=filters, offset=page.offset, limit=page.limit
    )
    page.headers(response, total)
    return [assignment_document(row) for row in rows]


@router.get("/rbac/role_assignments/{assignment_id}")
def role_assignment(assignment_id: str, _caller: CurrentCaller, session: Db) -> dict[str, Any]:
    """One role assignment."""
    return assignment_document(find_assignment(session=session, assignment_id=assignment_id))


@router.get("/rbac/permission_types")
def all_permission_types(_caller: CurrentCaller) -> dict[str, Any]:
    """Every resource type's permission types with their descriptions."""
    return permission_types()


@router.get("/rbac/permission_types/{resource_type}")
def resource_permission_types(resource_type: str, _caller: CurrentCaller) -> dict[str, Any]:
    """One resource type's permission types with their descriptions."""
    return permission_types(resource_type)
