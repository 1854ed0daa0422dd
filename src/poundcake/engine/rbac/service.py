"""Roles and role assignments read back as StackStorm's API shows them (``/v1/rbac/...``,
``st2 role``, ``st2 role-assignment``), and the roles a user holds (``/v1/user``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.rbac.models import PermissionGrantDB, RoleDB, UserRoleAssignmentDB
from poundcake.engine.rbac.types import PERMISSION_TYPES
from poundcake.exceptions import NotFoundError


def _page(
    session: Session, query: sa.Select[Any], order: Any, offset: int, limit: int | None
) -> tuple[int, list[Any]]:
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    paged = query.order_by(order).offset(offset)
    if limit is not None:
        paged = paged.limit(limit)
    return total, list(session.scalars(paged))


def list_roles(
    *,
    session: Session,
    name: str | None = None,
    system: bool | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[int, list[RoleDB]]:
    """Roles sorted by name, filtered by ``name`` and ``system``; with the total."""
    query = sa.select(RoleDB)
    if name is not None:
        query = query.where(RoleDB.name == name)
    if system is not None:
        query = query.where(RoleDB.system == system)
    return _page(session, query, RoleDB.name, offset, limit)


def find_role(*, session: Session, name_or_id: str) -> RoleDB:
    """A role by id, else by name."""
    role = session.get(RoleDB, name_or_id) or session.scalar(
        sa.select(RoleDB).where(RoleDB.name == name_or_id)
    )
    if role is None:
        raise NotFoundError(f'Resource with a name or id "{name_or_id}" not found')
    return role


def role_documents(*, session: Session, roles: list[RoleDB]) -> list[dict[str, Any]]:
    """StackStorm's ``RoleAPI`` documents, with each role's permission grant objects."""
    grant_ids = [grant_id for role in roles for grant_id in role.permission_grants]
    grants = {
        row.id: row
        for row in session.scalars(
            sa.select(PermissionGrantDB).where(PermissionGrantDB.id.in_(grant_ids))
        )
    }
    return [_role_document(role, grants) for role in roles]


def _role_document(role: RoleDB, grants: dict[str, PermissionGrantDB]) -> dict[str, Any]:
    document: dict[str, Any] = {"id": role.id, "name": role.name}
    if role.description is not None:
        document["description"] = role.description
    document["system"] = role.system
    document["permission_grants"] = list(role.permission_grants)
    document["permission_grant_ids"] = list(role.permission_grants)
    document["permission_grant_objects"] = [
        _grant_document(grants[grant_id])
        for grant_id in role.permission_grants
        if grant_id in grants
    ]
    return document


def _grant_document(grant: PermissionGrantDB) -> dict[str, Any]:
    document: dict[str, Any] = {"id": grant.id}
    if grant.resource_uid is not None:
        document["resource_uid"] = grant.resource_uid
        document["resource_type"] = grant.resource_type
    document["permission_types"] = list(grant.permission_types)
    return document


@dataclass(frozen=True)
class AssignmentFilters:
    """The filters ``st2 role-assignment list`` sends: ``user``, ``role``, ``source``,
    ``remote``."""

    user: str | None = None
    role: str | None = None
    source: str | None = None
    remote: bool | None = None


def list_assignments(
    *,
    session: Session,
    filters: AssignmentFilters,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[int, list[UserRoleAssignmentDB]]:
    """Role assignments oldest first, filtered; with the total."""
    query = sa.select(UserRoleAssignmentDB)
    for column, value in (
        (UserRoleAssignmentDB.user, filters.user),
        (UserRoleAssignmentDB.role, filters.role),
        (UserRoleAssignmentDB.source, filters.source),
        (UserRoleAssignmentDB.is_remote, filters.remote),
    ):
        if value is not None:
            query = query.where(column == value)
    return _page(session, query, UserRoleAssignmentDB.id, offset, limit)


def find_assignment(*, session: Session, assignment_id: str) -> UserRoleAssignmentDB:
    """One role assignment by id."""
    row = session.get(UserRoleAssignmentDB, assignment_id)
    if row is None:
        raise NotFoundError(f'Unable to identify resource with id "{assignment_id}".')
    return row


def assignment_document(row: UserRoleAssignmentDB) -> dict[str, Any]:
    """StackStorm's ``UserRoleAssignmentAPI`` document."""
    document: dict[str, Any] = {
        "id": row.id,
        "user": row.user,
        "role": row.role,
        "source": row.source,
        "is_remote": row.is_remote,
    }
    if row.description is not None:
        document["description"] = row.description
    return document


def role_names_for_user(*, session: Session, user: str) -> list[str]:
    """The names of the existing roles assigned to ``user``, sorted."""
    query = (
        sa.select(RoleDB.name)
        .join(UserRoleAssignmentDB, UserRoleAssignmentDB.role == RoleDB.name)
        .where(UserRoleAssignmentDB.user == user)
        .distinct()
        .order_by(RoleDB.name)
    )
    return list(session.scalars(query))


def permission_types(resource_type: str | None = None) -> dict[str, Any]:
    """Every resource type's permission types with descriptions, or one resource type's."""
    if resource_type is None:
        return {name: dict(types) for name, types in PERMISSION_TYPES.items()}
    if resource_type not in PERMISSION_TYPES:
        raise NotFoundError(f"Invalid resource type: {resource_type}")
    return dict(PERMISSION_TYPES[resource_type])


def user_rbac_document(*, session: Session, user: str, enabled: bool) -> dict[str, Any]:
    """``/v1/user``'s ``rbac``: as StackStorm, roles are listed only with RBAC on, and with
    it off (the ``noop`` backend) every user counts as an admin."""
    if not enabled:
        return {"enabled": False, "roles": [], "is_admin": True}
    roles = role_names_for_user(session=session, user=user)
    return {
        "enabled": True,
        "roles": roles,
        "is_admin": bool({"system_admin", "admin"} & set(roles)),
    }
