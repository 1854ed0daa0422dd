"""StackStorm's permission inheritance, resolver by resolver: system roles, ``*_all``, grants on
the pack covering its content, executions through their action, rule enforcements through
their rule, the key-value scopes, inquiries through their workflow, and the 403 messages."""

from __future__ import annotations

import pytest

from poundcake.engine.api.dependencies import check_limit
from poundcake.engine.rbac.enforcement import (
    AccessDeniedError,
    Authorizer,
    always_allowed,
    resource_denied,
    resource_type_denied,
)
from poundcake.engine.rbac.resolvers import (
    Grant,
    Resource,
    UserPermissions,
    has_create_permission,
    has_permission,
    has_resource_permission,
    permission_name,
    resource_type_of,
)
from poundcake.engine.rbac.resources import (
    action_resource,
    api_key_resource,
    content_resource,
    execution_resource,
    inquiry_resource,
    key_value_pair_resource,
    pack_resource,
    policy_type_resource,
    rule_enforcement_resource,
    runner_type_resource,
    timer_resource,
    webhook_resource,
)
from poundcake.engine.rbac.types import PERMISSION_TYPES


def user(*grants: tuple[str | None, list[str]], roles: tuple[str, ...] = ()) -> UserPermissions:
    """A user with ``roles`` and a custom role holding ``grants`` (uid or None, types)."""
    return UserPermissions(
        user="alice",
        roles=frozenset(roles),
        grants=tuple(
            Grant(uid, uid.split(":", 1)[0] if uid else None, frozenset(types))
            for uid, types in grants
        ),
    )


NOBODY = user()
EXECUTION = execution_resource("5f0c2b1e9d3a4c0012345678", "core.local")
EVERY_PERMISSION = sorted({name for names in PERMISSION_TYPES.values() for name in names})


def test_names_split_as_stackstorm() -> None:
    assert resource_type_of("action_execute") == "action"
    assert resource_type_of("key_value_pair_list") == "key_value_pair"
    assert resource_type_of("pack_views_index_health") == "pack"
    assert resource_type_of("execution_views_filters_list") == "execution"
    assert resource_type_of("stream_view") == "stream"
    assert permission_name("sensor_type_modify") == "modify"
    assert permission_name("pack_views_index_health") == "views_index_health"


@pytest.mark.parametrize("role", ["system_admin", "admin"])
def test_admins_hold_everything(role: str) -> None:
    admin = user(roles=(role,))
    for permission in EVERY_PERMISSION:
        if permission.endswith("_list") or permission in ("pack_install", "stream_view"):
            assert has_permission(admin, permission)
    assert has_resource_permission(admin, action_resource("core.local"), "action_execute")
    assert has_resource_permission(admin, EXECUTION, "execution_stop")
    assert has_resource_permission(admin, webhook_resource("x"), "webhook_send")
    other = key_value_pair_resource("st2kv.user", "bob:secret")
    assert has_resource_permission(admin, other, "key_value_pair_delete")


def test_observer_views_lists_and_searches_only() -> None:
    observer = user(roles=("observer",))
    assert has_permission(observer, "action_list")
    assert has_permission(observer, "execution_views_filters_list")
    assert has_permission(observer, "pack_search")
    assert has_permission(observer, "stream_view")
    assert not has_permission(observer, "pack_install")
    assert not has_permission(observer, "api_key_create")
    assert has_resource_permission(observer, action_resource("core.local"), "action_view")
    assert not has_resource_permission(observer, action_resource("core.local"), "action_execute")
    assert has_resource_permission(observer, EXECUTION, "execution_view")
    assert not has_resource_permission(observer, EXECUTION, "execution_stop")
    assert has_resource_permission(observer, inquiry_resource(None), "inquiry_view")
    assert not has_resource_permission(observer, inquiry_resource(None), "inquiry_respond")


def test_nobody_holds_nothing_but_their_own_keys() -> None:
    for permission in EVERY_PERMISSION:
        if permission.endswith("_list") and not permission.startswith("key_value_pair"):
            assert not has_permission(NOBODY, permission), permission
    assert has_permission(NOBODY, "key_value_pair_list")
    assert not has_resource_permission(NOBODY, action_resource("core.local"), "action_view")


def test_a_pack_grant_covers_its_content() -> None:
    ops = user(("pack:core", ["action_execute", "rule_view", "sensor_type_modify"]))
    assert has_resource_permission(ops, action_resource("core.local"), "action_execute")
    # action_execute implies action_view; not another pack's actions, not other permissions.
    assert has_resource_permission(ops, action_resource("core.local"), "action_view")
    assert not has_resource_permission(ops, action_resource("linux.ls"), "action_execute")
    assert not has_resource_permission(ops, action_resource("core.local"), "action_delete")
    assert has_resource_permission(ops, content_resource("rule", "core", "r"), "rule_view")
    assert not has_resource_permission(ops, content_resource("rule", "core", "r"), "rule_modify")
    sensor = content_resource("sensor_type", "core", "S")
    assert has_resource_permission(ops, sensor, "sensor_type_view")
    assert has_resource_permission(ops, sensor, "sensor_type_modify")
    # The pack itself is another matter: only pack_* grants on it count.
    assert not has_resource_permission(ops, pack_resource("core"), "pack_view")
    assert has_resource_permission(
        user(("pack:core", ["pack_view"])), pack_resource("core"), "pack_view"
    )


def test_all_covers_the_rest_of_its_kind() -> None:
    owner = user(("action:core:local", ["action_all"]))
    for name in ("view", "execute", "modify", "delete"):
        assert has_resource_permission(owner, action_resource("core.local"), f"action_{name}")
    assert not has_resource_permission(owner, action_resource("core.remote"), "action_view")
    hooks = user(("webhook:git", ["webhook_all"]))
    assert has_resource_permission(hooks, webhook_resource("git"), "webhook_send")
    assert not has_resource_permission(hooks, webhook_resource("other"), "webhook_send")


def test_direct_resources_need_a_grant_on_themselves() -> None:
    for resource, permission in (
        (runner_type_resource("local-shell-cmd"), "runner_type_view"),
        (webhook_resource("git"), "webhook_send"),
        (timer_resource("core", "every_minute"), "timer_view"),
        (api_key_resource("hash"), "api_key_delete"),
        (policy_type_resource("action", "concurrency"), "policy_type_view"),
    ):
        granted = user((resource.uid, [permission]))
        assert has_resource_permission(granted, resource, permission)
        assert not has_resource_permission(NOBODY, resource, permission)


def test_executions_inherit_from_their_action_and_pack() -> None:
    on_action = user(("action:core:local", ["action_execute"]))
    on_pack = user(("pack:core", ["action_execute"]))
    viewer = user(("action:core:local", ["action_view"]))
    for holder in (on_action, on_pack):
        assert has_resource_permission(holder, EXECUTION, "execution_stop")
        assert has_resource_permission(holder, EXECUTION, "execution_rerun")
        assert not has_resource_permission(holder, EXECUTION, "execution_view")
    assert has_resource_permission(viewer, EXECUTION, "execution_view")
    assert not has_resource_permission(viewer, EXECUTION, "execution_stop")
    other = execution_resource("5f0c2b1e9d3a4c0012345679", "linux.ls")
    assert not has_resource_permission(on_pack, other, "execution_stop")
    # A grant on the execution itself does not count: StackStorm resolves through the action.
    direct = user((EXECUTION.uid, ["execution_view"]))
    assert not has_resource_permission(direct, EXECUTION, "execution_view")


def test_rule_enforcements_inherit_from_their_rule() -> None:
    enforcement = rule_enforcement_resource("e1", {"ref": "examples.on_push"})
    assert has_resource_permission(
        user(("rule:examples:on_push", ["rule_modify"])), enforcement, "rule_enforcement_view"
    )
    assert has_resource_permission(
        user(("pack:examples", ["rule_view"])), enforcement, "rule_enforcement_view"
    )
    assert not has_resource_permission(
        user(("rule:examples:other", ["rule_all"])), enforcement, "rule_enforcement_view"
    )
    # Listing them is rule_list.
    assert has_permission(user((None, ["rule_list"])), "rule_enforcement_list")
    assert not has_permission(user((None, ["rule_enforcement_list"])), "rule_enforcement_list")


def test_user_scoped_keys_are_private() -> None:
    own = key_value_pair_resource("st2kv.user", "alice:token")
    bobs = key_value_pair_resource("st2kv.user", "bob:token")
    assert has_resource_permission(NOBODY, own, "key_value_pair_set")
    assert not has_resource_permission(NOBODY, bobs, "key_value_pair_view")
    # As in StackStorm, the resolver lets a system role's read permissions reach another user's
    # keys; the API never asks it, since only administrators may name another user.
    observer = user(roles=("observer",))
    assert has_resource_permission(observer, bobs, "key_value_pair_view")
    assert not has_resource_permission(observer, bobs, "key_value_pair_set")
    # Not even a grant on another user's key opens it: only admins may.
    granted = user((bobs.uid, ["key_value_pair_all"]))
    assert not has_resource_permission(granted, bobs, "key_value_pair_view")
    assert has_resource_permission(user(roles=("admin",)), bobs, "key_value_pair_view")


def test_system_keys_need_a_system_role_or_a_grant() -> None:
    key = key_value_pair_resource("st2kv.system", "api_token")
    observer = user(roles=("observer",))
    assert has_resource_permission(observer, key, "key_value_pair_view")
    assert not has_resource_permission(observer, key, "key_value_pair_set")
    assert not has_resource_permission(NOBODY, key, "key_value_pair_view")
    setter = user((key.uid, ["key_value_pair_set"]))
    assert has_resource_permission(setter, key, "key_value_pair_view")  # set implies view
    assert has_resource_permission(setter, key, "key_value_pair_set")
    assert not has_resource_permission(setter, key, "key_value_pair_delete")


def test_inquiries_through_a_grant_or_their_workflow() -> None:
    asked = inquiry_resource("examples.approve")
    assert has_resource_permission(user((None, ["inquiry_respond"])), asked, "inquiry_respond")
    runner = user(("action:examples:approve", ["action_execute"]))
    assert has_resource_permission(runner, asked, "inquiry_respond")
    assert has_resource_permission(user(("pack:examples", ["action_all"])), asked, "inquiry_view")
    assert not has_resource_permission(runner, inquiry_resource(None), "inquiry_respond")
    assert not has_resource_permission(NOBODY, asked, "inquiry_respond")


def test_creating_needs_the_grant_on_the_new_uid_or_its_pack() -> None:
    new_rule = content_resource("rule", "examples", "new")
    assert has_create_permission(user(("pack:examples", ["rule_create"])), new_rule, "rule_create")
    assert not has_create_permission(user(("pack:core", ["rule_create"])), new_rule, "rule_create")
    key = api_key_resource("")
    assert has_create_permission(user((None, ["api_key_create"])), key, "api_key_create")
    assert not has_create_permission(NOBODY, key, "api_key_create")


def test_messages_are_stackstorms() -> None:
    assert str(resource_denied("alice", action_resource("core.local"), "action_execute")) == (
        'User "alice" doesn\'t have required permission "action_execute" on resource '
        '"action:core:local"'
    )
    # A global permission type never names the resource.
    assert str(resource_denied("alice", inquiry_resource(None), "inquiry_respond")) == (
        'User "alice" doesn\'t have required permission "inquiry_respond"'
    )
    assert str(resource_type_denied("bob", "action_list")) == (
        'User "bob" doesn\'t have required permission "action_list"'
    )


def test_an_authorizer_reads_once_and_not_at_all_with_rbac_off() -> None:
    reads: list[int] = []

    def load() -> UserPermissions:
        reads.append(1)
        return user(("pack:core", ["action_view"]))

    authorizer = Authorizer(user="alice", enabled=True, load=load)
    assert not reads
    authorizer.require_on(action_resource("core.local"), "action_view")
    with pytest.raises(AccessDeniedError):
        authorizer.require("action_list")
    assert not authorizer.is_admin
    assert authorizer.viewable(["core.local", "linux.ls"], action_resource, "action_view") == [
        "core.local"
    ]
    assert len(reads) == 1
    off = always_allowed("alice")
    off.require("pack_install")
    off.require_on(action_resource("core.local"), "action_execute")
    off.require_admin()
    assert off.is_admin and off.has_system_role


def test_admin_checks() -> None:
    plain = Authorizer(user="alice", enabled=True, load=lambda: NOBODY)
    with pytest.raises(AccessDeniedError, match=r"^Administrator access required$"):
        plain.require_admin()
    plain.require_admin_or_self("alice")
    with pytest.raises(AccessDeniedError, match="Administrator or self access required"):
        plain.require_admin_or_self("bob")
    plain.require_admin_for_other_user("alice")
    with pytest.raises(AccessDeniedError, match='"user" attribute can only be provided by admins'):
        plain.require_admin_for_other_user("bob")


def test_an_unknown_resource_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="Unsupported resource: planet"):
        has_resource_permission(NOBODY, Resource("planet", "planet:x"), "planet_view")


def test_only_administrators_page_past_the_maximum() -> None:
    plain = Authorizer(user="alice", enabled=True, load=lambda: NOBODY)
    check_limit(plain, 100, 100)
    with pytest.raises(AccessDeniedError, match="specify limit=-1"):
        check_limit(plain, -1, 100)
    with pytest.raises(AccessDeniedError, match='Limit "101" specified, maximum value is "100"'):
        check_limit(plain, 101, 100)
    admin = Authorizer(user="root", enabled=True, load=lambda: user(roles=("admin",)))
    check_limit(admin, -1, 100)
    check_limit(always_allowed("bob"), -1, 100)
