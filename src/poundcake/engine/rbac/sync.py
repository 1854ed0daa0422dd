"""Make the RBAC tables hold exactly what the definition files say (``st2-apply-rbac-definitions``).

Unlike StackStorm's syncer, which deletes and recreates every role it finds on each run, a role,
assignment or mapping is only written when it differs, so a second run changes nothing and says
so. System roles are never touched. Assignments not from files (``source`` other than
``assignments/...``, or ``is_remote``) are left alone. The caller commits once: a bad file is
found before anything is written (:func:`~poundcake.engine.rbac.definitions.load_definitions`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.rbac.definitions import (
    AssignmentDefinition,
    Definitions,
    GrantDefinition,
    MappingDefinition,
    RoleDefinition,
)
from poundcake.engine.rbac.models import (
    GroupToRoleMappingDB,
    PermissionGrantDB,
    RoleDB,
    UserRoleAssignmentDB,
)
from poundcake.ids import new_id

logger = logging.getLogger(__name__)

FILE_SOURCE_PREFIX = "assignments/"


@dataclass
class Changes:
    """What one kind of definition changed: names created, updated and removed."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.created) + len(self.updated) + len(self.removed)

    def summary(self) -> str:
        """``2 created, 1 updated, 0 removed``."""
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, {len(self.removed)} removed"
        )


@dataclass
class SyncReport:
    roles: Changes = field(default_factory=Changes)
    assignments: Changes = field(default_factory=Changes)
    mappings: Changes = field(default_factory=Changes)

    @property
    def changed(self) -> bool:
        return bool(self.roles.count or self.assignments.count or self.mappings.count)


def sync_definitions(*, session: Session, definitions: Definitions) -> SyncReport:
    """Bring roles, file assignments and group mappings in line with ``definitions``; flush."""
    report = SyncReport()
    _sync_roles(session, definitions.roles, report.roles)
    _sync_assignments(session, definitions.assignments, report.assignments)
    _sync_mappings(session, definitions.mappings, report.mappings)
    session.flush()
    logger.info(
        "RBAC definitions synchronized: roles %s; role assignments %s; group mappings %s",
        report.roles.summary(),
        report.assignments.summary(),
        report.mappings.summary(),
    )
    return report


def _fold(*names: str) -> tuple[str, ...]:
    return tuple(name.casefold() for name in names)


def _grant_key(grant: GrantDefinition) -> tuple[Any, ...]:
    return (grant.resource_uid, grant.resource_type, tuple(grant.permission_types))


def _role_unchanged(
    role: RoleDB, definition: RoleDefinition, grants: dict[str, PermissionGrantDB]
) -> bool:
    stored = [
        (row.resource_uid, row.resource_type, tuple(row.permission_types))
        for row in (grants.get(grant_id) for grant_id in role.permission_grants)
        if row is not None
    ]
    return (role.name, role.description) == (definition.name, definition.description) and (
        stored == [_grant_key(grant) for grant in definition.grants]
    )


def _sync_roles(session: Session, wanted: tuple[RoleDefinition, ...], changes: Changes) -> None:
    # Matched without case, as MariaDB's unique index compares names: a file that only changes
    # a name's case updates the role instead of inserting a clashing one.
    stored = {
        role.name.casefold(): role
        for role in session.scalars(sa.select(RoleDB).where(~RoleDB.system))
    }
    grants = {row.id: row for row in session.scalars(sa.select(PermissionGrantDB))}
    for definition in wanted:
        role = stored.pop(definition.name.casefold(), None)
        if role is None:
            role = RoleDB(id=new_id(), system=False, permission_grants=[])
            session.add(role)
            changes.created.append(definition.name)
        elif _role_unchanged(role, definition, grants):
            continue
        else:
            _delete_grants(session, role)
            changes.updated.append(definition.name)
        role.name = definition.name
        role.description = definition.description
        role.permission_grants = _create_grants(session, definition.grants)
    for role in sorted(stored.values(), key=lambda role: role.name):
        _delete_grants(session, role)
        session.delete(role)
        changes.removed.append(role.name)


def _create_grants(session: Session, grants: tuple[GrantDefinition, ...]) -> list[str]:
    ids = []
    for grant in grants:
        row = PermissionGrantDB(
            id=new_id(),
            resource_uid=grant.resource_uid,
            resource_type=grant.resource_type,
            permission_types=list(grant.permission_types),
        )
        session.add(row)
        ids.append(row.id)
    return ids


def _delete_grants(session: Session, role: RoleDB) -> None:
    if role.permission_grants:
        session.execute(
            sa.delete(PermissionGrantDB).where(PermissionGrantDB.id.in_(role.permission_grants))
        )


def _sync_assignments(
    session: Session, wanted: tuple[AssignmentDefinition, ...], changes: Changes
) -> None:
    stored = {
        _fold(row.user, row.role, row.source): row
        for row in session.scalars(
            sa.select(UserRoleAssignmentDB).where(
                ~UserRoleAssignmentDB.is_remote,
                UserRoleAssignmentDB.source.startswith(FILE_SOURCE_PREFIX, autoescape=True),
            )
        )
    }
    for definition in wanted:
        for role in definition.roles:
            label = f"{definition.username}: {role} ({definition.source})"
            values: dict[str, Any] = {
                "user": definition.username,
                "role": role,
                "source": definition.source,
                "description": definition.description,
            }
            row = stored.pop(_fold(definition.username, role, definition.source), None)
            if row is None:
                session.add(UserRoleAssignmentDB(id=new_id(), is_remote=False, **values))
                changes.created.append(label)
            elif _update(row, values):
                changes.updated.append(label)
    for _key, row in sorted(stored.items()):
        session.delete(row)
        changes.removed.append(f"{row.user}: {row.role} ({row.source})")


def _sync_mappings(
    session: Session, wanted: tuple[MappingDefinition, ...], changes: Changes
) -> None:
    stored = {row.group.casefold(): row for row in session.scalars(sa.select(GroupToRoleMappingDB))}
    for definition in wanted:
        values = {
            "group": definition.group,
            "roles": list(definition.roles),
            "description": definition.description,
            "enabled": definition.enabled,
            "source": definition.source,
        }
        row = stored.pop(definition.group.casefold(), None)
        if row is None:
            session.add(GroupToRoleMappingDB(id=new_id(), **values))
            changes.created.append(definition.group)
        elif _update(row, values):
            changes.updated.append(definition.group)
    for _key, row in sorted(stored.items()):
        session.delete(row)
        changes.removed.append(row.group)


def _update(row: object, values: dict[str, Any]) -> bool:
    """Set the fields of ``row`` that differ from ``values``; tell whether any did."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed
