"""RBAC enforcement for one caller: the one place routes ask whether a permission is held.

An :class:`Authorizer` is made per request. With ``[rbac] enable`` off it allows everything
without touching the database (StackStorm's ``noop`` backend). With it on, the caller's roles and
their grants are read once, on the first check, in two queries, and every later check of the
request resolves in memory (:mod:`poundcake.engine.rbac.resolvers`). A denial raises StackStorm's
403 messages (``st2common/exceptions/rbac.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.rbac.models import PermissionGrantDB, RoleDB, UserRoleAssignmentDB
from poundcake.engine.rbac.resolvers import (
    Grant,
    Resource,
    UserPermissions,
    has_create_permission,
    has_permission,
    has_resource_permission,
)
from poundcake.engine.rbac.resources import action_resource, webhook_resource
from poundcake.engine.rbac.types import ALL_PERMISSION_TYPES, GLOBAL_PERMISSION_TYPES
from poundcake.exceptions import PermissionDeniedError

T = TypeVar("T")


class AccessDeniedError(PermissionDeniedError):
    """StackStorm's ``AccessDeniedError``: a 403 with a message of its own."""


def resource_type_denied(user: str, permission_type: str) -> AccessDeniedError:
    """StackStorm's ``ResourceTypeAccessDeniedError``."""
    return AccessDeniedError(f'User "{user}" doesn\'t have required permission "{permission_type}"')


def resource_denied(
    user: str, resource: Resource | None, permission_type: str
) -> AccessDeniedError:
    """StackStorm's ``ResourceAccessDeniedError``: names the resource unless the permission is
    a global one."""
    if resource is not None and permission_type not in GLOBAL_PERMISSION_TYPES:
        return AccessDeniedError(
            f'User "{user}" doesn\'t have required permission "{permission_type}" on resource '
            f'"{resource.uid}"'
        )
    return resource_type_denied(user, permission_type)


def load_user_permissions(session: Session, user: str) -> UserPermissions:
    """The user's roles (those that exist) and every grant of them: two queries."""
    rows = session.execute(
        sa.select(RoleDB.name, RoleDB.permission_grants)
        .join(UserRoleAssignmentDB, UserRoleAssignmentDB.role == RoleDB.name)
        .where(UserRoleAssignmentDB.user == user)
    ).all()
    roles = frozenset(name for name, _ in rows)
    grant_ids = {grant_id for _, ids in rows for grant_id in ids or ()}
    grants: tuple[Grant, ...] = ()
    if grant_ids:
        grants = tuple(
            Grant(row.resource_uid, row.resource_type, frozenset(row.permission_types or ()))
            for row in session.scalars(
                sa.select(PermissionGrantDB).where(PermissionGrantDB.id.in_(grant_ids))
            )
        )
    return UserPermissions(user=user, roles=roles, grants=grants)


class Authorizer:
    """The caller's permissions for one request."""

    def __init__(self, *, user: str, enabled: bool, load: Callable[[], UserPermissions]) -> None:
        self.user = user
        self.enabled = enabled
        self._load = load
        self._permissions: UserPermissions | None = None

    @property
    def permissions(self) -> UserPermissions:
        """The caller's roles and grants, read on first use."""
        if self._permissions is None:
            self._permissions = self._load()
        return self._permissions

    @property
    def is_admin(self) -> bool:
        """``system_admin`` or ``admin``; everyone is with RBAC off."""
        return not self.enabled or self.permissions.is_admin

    @property
    def has_system_role(self) -> bool:
        """Any system role; everyone has with RBAC off."""
        return not self.enabled or self.permissions.has_system_role

    def may(self, permission_type: str) -> bool:
        """Whether the caller holds a global permission."""
        return not self.enabled or has_permission(self.permissions, permission_type)

    def may_on(self, resource: Resource, permission_type: str) -> bool:
        """Whether the caller holds ``permission_type`` on ``resource``."""
        return not self.enabled or has_resource_permission(
            self.permissions, resource, permission_type
        )

    def require(self, permission_type: str) -> None:
        """Raise StackStorm's 403 unless the caller holds a global permission."""
        if not self.may(permission_type):
            raise resource_type_denied(self.user, permission_type)

    def require_on(self, resource: Resource, permission_type: str) -> None:
        """Raise StackStorm's 403 unless the caller holds ``permission_type`` on ``resource``."""
        if not self.may_on(resource, permission_type):
            raise resource_denied(self.user, resource, permission_type)

    def require_create(self, resource: Resource, permission_type: str) -> None:
        """Raise StackStorm's 403 unless the caller may create ``resource``."""
        if self.enabled and not has_create_permission(self.permissions, resource, permission_type):
            raise resource_denied(self.user, resource, permission_type)

    def require_admin(self, message: str = "Administrator access required") -> None:
        """Raise a 403 with ``message`` unless the caller is an administrator."""
        if not self.is_admin:
            raise AccessDeniedError(message)

    def require_admin_or_self(self, user: str | None) -> None:
        """An administrator, or a caller asking about themselves."""
        if self.enabled and not self.is_admin and user != self.user:
            raise AccessDeniedError("Administrator or self access required")

    def require_admin_for_other_user(self, user: str | None) -> None:
        """StackStorm's check of a ``user`` parameter naming someone else: only administrators
        may (with RBAC off, everyone is one)."""
        if user is not None and user != self.user and not self.is_admin:
            raise AccessDeniedError('"user" attribute can only be provided by admins')

    def has_any_grant_on(self, resource_uid: str) -> bool:
        """Whether one of the caller's grants names ``resource_uid`` (any permission)."""
        return not self.enabled or self.permissions.granted(
            ALL_PERMISSION_TYPES, resource_uid=resource_uid
        )

    def viewable(
        self, items: Iterable[T], resource_of: Callable[[T], Resource], permission_type: str
    ) -> list[T]:
        """The items the caller holds ``permission_type`` on."""
        if not self.enabled:
            return list(items)
        return [item for item in items if self.may_on(resource_of(item), permission_type)]


def always_allowed(user: str) -> Authorizer:
    """An authorizer for RBAC off: allows everything, reads nothing."""

    def unreachable() -> UserPermissions:
        raise AssertionError("RBAC is off: no permissions are read")

    return Authorizer(user=user, enabled=False, load=unreachable)


WEBHOOK_TRIGGER_TYPE = "core.st2.webhook"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def require_rule_trigger_and_action(rbac: Authorizer, rule: dict[str, Any]) -> None:
    """StackStorm's check of what a created or updated rule uses: ``webhook_create`` on the
    webhook it listens on (other triggers are not checked) and ``action_execute`` on its
    action (which need not exist yet)."""
    if not rbac.enabled:
        return
    trigger = _mapping(rule.get("trigger"))
    if trigger.get("type") == WEBHOOK_TRIGGER_TYPE:
        url = str(_mapping(trigger.get("parameters")).get("url", ""))
        if not rbac.may_on(webhook_resource(url), "webhook_create"):
            raise AccessDeniedError(
                f'User "{rbac.user}" doesn\'t have required permission (webhook_create) to use '
                f"trigger {WEBHOOK_TRIGGER_TYPE}"
            )
    action = _mapping(rule.get("action"))
    ref = str(action.get("ref") or "")
    if ref and not rbac.may_on(action_resource(ref), "action_execute"):
        raise AccessDeniedError(
            f'User "{rbac.user}" doesn\'t have required (action_execute) permission to use '
            f"action {ref}"
        )
