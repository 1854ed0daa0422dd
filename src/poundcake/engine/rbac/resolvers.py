"""Whether a user holds a permission: StackStorm's resolvers (``st2rbac_backend/resolvers.py``),
one per resource type, over a snapshot of the user's roles and grants.

The inheritance is StackStorm's: ``system_admin`` and ``admin`` hold everything; ``observer``
holds every ``view``, ``list`` and ``search`` permission; a grant of ``<type>_all`` covers the
other permissions on that resource; a grant on ``pack:<ref>`` covers the pack's sensors,
actions, aliases and rules (and policies, were a pack grant to hold policy permissions, which
role files cannot), and (through their action) its executions and (through their rule) its rule
enforcements; a permission that "implies view" grants view.

Everything here is pure: the snapshot (:class:`UserPermissions`) is read once per request by
:mod:`poundcake.engine.rbac.enforcement`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from poundcake.engine.rbac.uids import pack_uid

ADMIN_ROLES = frozenset({"system_admin", "admin"})
OBSERVER = "observer"
READ_PERMISSION_NAMES = ("view", "list", "search")
SYSTEM_SCOPE = "st2kv.system"
USER_SCOPE = "st2kv.user"


@dataclass(frozen=True)
class Grant:
    """One permission grant of one of the user's roles (``resource_uid`` None: global)."""

    resource_uid: str | None
    resource_type: str | None
    permission_types: frozenset[str]


@dataclass(frozen=True)
class UserPermissions:
    """A user's role names and the grants of those roles."""

    user: str
    roles: frozenset[str]
    grants: tuple[Grant, ...] = ()

    @property
    def is_admin(self) -> bool:
        """``system_admin`` or ``admin``, as StackStorm's ``user_is_admin``."""
        return bool(self.roles & ADMIN_ROLES)

    @property
    def has_system_role(self) -> bool:
        """Any of the three system roles."""
        return self.is_admin or OBSERVER in self.roles

    def granted(
        self,
        permission_types: Iterable[str],
        *,
        resource_uid: str | None = None,
        resource_types: Iterable[str | None] | None = None,
    ) -> bool:
        """Whether a grant holds one of ``permission_types``, on ``resource_uid`` and of one of
        ``resource_types`` when given (StackStorm's ``get_all_permission_grants_for_user``)."""
        wanted = frozenset(permission_types)
        types = None if resource_types is None else frozenset(resource_types)
        for grant in self.grants:
            if resource_uid is not None and grant.resource_uid != resource_uid:
                continue
            if types is not None and grant.resource_type not in types:
                continue
            if grant.permission_types & wanted:
                return True
        return False


@dataclass(frozen=True)
class Resource:
    """What a resolver needs of a resource: its type and uid, and for content of a pack, the
    pack; for an execution (or an inquiry), its action's uid and pack; for a rule enforcement,
    its rule's uid and pack; for a key-value pair, its scope and stored name."""

    type: str
    uid: str
    pack: str | None = None
    parent_uid: str | None = None
    scope: str | None = None
    name: str | None = None


def resource_type_of(permission_type: str) -> str:
    """The resource type a permission type belongs to (``action_execute`` -> ``action``)."""
    if permission_type == "pack_views_index_health":
        return "pack"
    if permission_type == "execution_views_filters_list":
        return "execution"
    resource_type, separator, _ = permission_type.rpartition("_")
    if not separator:
        raise ValueError(f'invalid permission type "{permission_type}"')
    return resource_type


def permission_name(permission_type: str) -> str:
    """The permission's name within its type (``action_execute`` -> ``execute``)."""
    if permission_type == "pack_views_index_health":
        return "views_index_health"
    return permission_type.rpartition("_")[2]


def _system_role_grants(user: UserPermissions, permission_type: str) -> bool:
    if user.is_admin:
        return True
    return OBSERVER in user.roles and permission_name(permission_type) in READ_PERMISSION_NAMES


def has_permission(user: UserPermissions, permission_type: str) -> bool:
    """A permission not tied to a resource: ``*_list``, ``pack_install``, ``stream_view``, ...
    (StackStorm's ``user_has_permission``)."""
    resource_type = resource_type_of(permission_type)
    if resource_type == "key_value_pair":
        # Everyone may list: their own user-scoped keys at least.
        return True
    if resource_type == "rule_enforcement":
        permission_type = "rule_list"
    if _system_role_grants(user, permission_type):
        return True
    return user.granted([permission_type])


# Permission types that imply ``<type>_view`` on a pack resource.
_VIEW_GRANTED_BY: dict[str, tuple[str, ...]] = {
    "sensor_type": ("sensor_type_all", "sensor_type_modify"),
    "action": ("action_all", "action_create", "action_modify", "action_delete", "action_execute"),
    "action_alias": (
        "action_alias_all",
        "action_alias_create",
        "action_alias_modify",
        "action_alias_delete",
    ),
    "rule": ("rule_all", "rule_create", "rule_modify", "rule_delete"),
    "policy": ("policy_all", "policy_create", "policy_modify", "policy_delete"),
}


def _candidate_types(resource_type: str, permission_type: str) -> list[str]:
    """The grants that give ``permission_type``: itself, ``<type>_all``, and for ``view`` the
    permissions that imply it."""
    if permission_type == f"{resource_type}_view" and resource_type in _VIEW_GRANTED_BY:
        return [*_VIEW_GRANTED_BY[resource_type], permission_type]
    return [f"{resource_type}_all", permission_type]


def _content(user: UserPermissions, resource: Resource, permission_type: str) -> bool:
    """Sensors, actions, aliases, rules, policies: a grant on the resource or on its pack."""
    if _system_role_grants(user, permission_type):
        return True
    wanted = _candidate_types(resource.type, permission_type)
    if user.granted(wanted, resource_uid=resource.uid, resource_types=[resource.type]):
        return True
    return resource.pack is not None and user.granted(
        wanted, resource_uid=pack_uid(resource.pack), resource_types=["pack"]
    )


def _direct(user: UserPermissions, resource: Resource, permission_type: str) -> bool:
    """Runner types, webhooks, timers, API keys, traces, triggers, policy types: a grant on the
    resource itself (``<type>_all`` or the permission)."""
    if _system_role_grants(user, permission_type):
        return True
    return user.granted(
        [f"{resource.type}_all", permission_type],
        resource_uid=resource.uid,
        resource_types=[resource.type],
    )


def _pack(user: UserPermissions, resource: Resource, permission_type: str) -> bool:
    if _system_role_grants(user, permission_type):
        return True
    return user.granted([permission_type], resource_uid=resource.uid, resource_types=["pack"])


_EXECUTION_TO_ACTION = {
    "execution_view": "action_view",
    "execution_rerun": "action_execute",
    "execution_stop": "action_execute",
    "execution_all": "action_all",
    "execution_views_filters_list": "execution_views_filters_list",
}


def _execution(user: UserPermissions, resource: Resource, permission_type: str) -> bool:
    """An execution: ``action_execute`` on its action (or the action's pack) grants re-run and
    stop, ``action_view`` grants view."""
    if _system_role_grants(user, permission_type):
        return True
    if permission_type not in _EXECUTION_TO_ACTION:
        raise ValueError(f"Invalid permission type: {permission_type}")
    wanted = ["action_all", _EXECUTION_TO_ACTION[permission_type]]
    return _on_parent(user, resource, wanted, "action")


def _on_parent(
    user: UserPermissions, resource: Resource, wanted: list[str], parent_type: str
) -> bool:
    if resource.pack is not None and user.granted(
        wanted, resource_uid=pack_uid(resource.pack), resource_types=["pack"]
    ):
        return True
    return resource.parent_uid is not None and user.granted(
        wanted, resource_uid=resource.parent_uid, resource_types=[parent_type]
    )


def _rule_enforcement(user: UserPermissions, resource: Resource, permission_type: str) -> bool:
    """A rule enforcement: the view (or list) permission on its rule or the rule's pack."""
    if _system_role_grants(user, permission_type):
        return True
    if permission_type == "rule_enforcement_view":
        wanted = _candidate_types("rule", "rule_view")
    elif permission_type == "rule_enforcement_list":
        wanted = ["rule_all", "rule_list"]
    else:
        raise ValueError(f"Invalid permission type: {permission_type}")
    if resource.pack is None or resource.parent_uid is None:
        return False
    return _on_parent(user, resource, wanted, "rule")


def _key_value_pair(user: UserPermissions, resource: Resource, permission_type: str) -> bool:
    """A key: the system roles reach system keys (and admins everyone's); a user's own
    user-scoped keys are theirs; another user's are closed to everyone else; otherwise a grant
    on the key."""
    scope, name = resource.scope or "", resource.name or ""
    system_role = _system_role_grants(user, permission_type)
    if scope == SYSTEM_SCOPE and system_role:
        return True
    own_prefix = f"{user.user}:"
    if scope == f"{USER_SCOPE}:{user.user}" or (
        scope == USER_SCOPE and name.startswith(own_prefix)
    ):
        return True
    others = (scope.startswith(f"{USER_SCOPE}:") and scope != f"{USER_SCOPE}:{user.user}") or (
        scope == USER_SCOPE and not name.startswith(own_prefix)
    )
    if others:
        return system_role
    if permission_type in ("key_value_pair_list", "key_value_pair_view"):
        wanted = [
            "key_value_pair_list",
            "key_value_pair_set",
            "key_value_pair_delete",
            "key_value_pair_all",
            permission_type,
        ]
    else:
        wanted = ["key_value_pair_all", permission_type]
    return user.granted(wanted, resource_uid=resource.uid, resource_types=["key_value_pair"])


_INQUIRY_PERMISSIONS = ("inquiry_view", "inquiry_respond", "inquiry_all")


def _inquiry(user: UserPermissions, resource: Resource, permission_type: str) -> bool:
    """An inquiry: an inquiry grant (global, as role files write it), or ``action_execute`` on
    the workflow that asked it (or its pack)."""
    if permission_type not in _INQUIRY_PERMISSIONS:
        raise ValueError(f"Invalid permission type: {permission_type}")
    if _system_role_grants(user, permission_type):
        return True
    if user.granted(_INQUIRY_PERMISSIONS, resource_types=["inquiry", None]):
        return True
    return _on_parent(user, resource, ["action_all", "action_execute"], "action")


Resolver = Callable[[UserPermissions, Resource, str], bool]
_RESOLVERS: dict[str, Resolver] = {
    "pack": _pack,
    "sensor_type": _content,
    "action": _content,
    "action_alias": _content,
    "rule": _content,
    "policy": _content,
    "runner_type": _direct,
    "webhook": _direct,
    "timer": _direct,
    "api_key": _direct,
    "trace": _direct,
    "trigger": _direct,
    "policy_type": _direct,
    "execution": _execution,
    "rule_enforcement": _rule_enforcement,
    "key_value_pair": _key_value_pair,
    "inquiry": _inquiry,
}


def has_resource_permission(
    user: UserPermissions, resource: Resource, permission_type: str
) -> bool:
    """A permission on one resource (StackStorm's ``user_has_resource_db_permission``); the
    permission type decides the resolver, as in StackStorm."""
    resource_type = resource_type_of(permission_type)
    try:
        resolver = _RESOLVERS[resource_type]
    except KeyError:
        raise ValueError(f"Unsupported resource: {resource_type}") from None
    return resolver(user, resource, permission_type)


def has_create_permission(user: UserPermissions, resource: Resource, permission_type: str) -> bool:
    """A permission to create ``resource`` (StackStorm's ``user_has_resource_api_permission``):
    API keys need the global ``api_key_create``; pack content a grant on its uid or pack."""
    if permission_type == "api_key_create":
        return _system_role_grants(user, permission_type) or user.granted([permission_type])
    return has_resource_permission(user, resource, permission_type)
