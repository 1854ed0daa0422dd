"""Resource uids as StackStorm forms them, checked against values StackStorm itself produces
(``get_uid()`` of its models, and the uids its tests and docs grant on)."""

from __future__ import annotations

import pytest

from poundcake.engine.rbac import uids
from poundcake.engine.rbac.resources import (
    action_resource,
    execution_resource,
    inquiry_resource,
    key_value_pair_resource,
    rule_enforcement_resource,
    split_ref,
)


@pytest.mark.parametrize(
    ("uid", "expected"),
    [
        (uids.pack_uid("core"), "pack:core"),
        (uids.runner_type_uid("local-shell-cmd"), "runner_type:local-shell-cmd"),
        (uids.content_uid("action", "core", "local"), "action:core:local"),
        (uids.content_uid("rule", "examples", "sample_rule"), "rule:examples:sample_rule"),
        (
            uids.content_uid("sensor_type", "linux", "FileWatchSensor"),
            "sensor_type:linux:FileWatchSensor",
        ),
        (uids.content_uid("action_alias", "packs", "pack_get"), "action_alias:packs:pack_get"),
        (uids.content_uid("trigger_type", "core", "st2.webhook"), "trigger_type:core:st2.webhook"),
        (
            uids.content_uid("policy", "wolfpack", "action-1.concurrency"),
            "policy:wolfpack:action-1.concurrency",
        ),
        (uids.policy_type_uid("action", "concurrency"), "policy_type:action:concurrency"),
        (uids.execution_uid("5f0c2b1e9d3a4c0012345678"), "execution:5f0c2b1e9d3a4c0012345678"),
        (
            uids.rule_enforcement_uid("5f0c2b1e9d3a4c0012345679"),
            "rule_enforcement:5f0c2b1e9d3a4c0012345679",
        ),
        (
            uids.key_value_pair_uid("st2kv.system", "api_token"),
            "key_value_pair:st2kv.system:api_token",
        ),
        (
            uids.key_value_pair_uid("st2kv.user", "alice:token"),
            "key_value_pair:st2kv.user:alice:token",
        ),
        (uids.webhook_uid("git/push"), "webhook:git/push"),
        (uids.api_key_uid("abc123"), "api_key:abc123"),
        (uids.INQUIRY_UID, "inquiry"),
    ],
)
def test_uids_are_stackstorms(uid: str, expected: str) -> None:
    assert uid == expected


def test_an_empty_field_is_an_empty_part() -> None:
    # StackStorm joins ``getattr(self, field) or ""``: an unnamed action is "action:core:".
    assert uids.content_uid("action", "core", "") == "action:core:"


def test_a_trigger_uid_hashes_its_parameters_as_stackstorm() -> None:
    # hashlib.md5(json.dumps({}, sort_keys=True).encode()).hexdigest(), as TriggerDB.get_uid.
    assert uids.trigger_uid("core", "st2.IntervalTimer", {}) == (
        "trigger:core:st2.IntervalTimer:99914b932bd37a50b983c5e7c90ae93b"
    )
    same = uids.trigger_uid("core", "t", {"b": 1, "a": 2})
    assert same == uids.trigger_uid("core", "t", {"a": 2, "b": 1})
    assert same != uids.trigger_uid("core", "t", {"a": 2, "b": 3})


def test_refs_split_at_the_first_dot() -> None:
    assert split_ref("core.local") == ("core", "local")
    assert split_ref("linux.file.watch") == ("linux", "file.watch")
    assert action_resource("linux.file.watch").uid == "action:linux:file.watch"


def test_resources_carry_what_grants_inherit_from() -> None:
    execution = execution_resource("5f0c2b1e9d3a4c0012345678", "core.local")
    assert (execution.uid, execution.pack, execution.parent_uid) == (
        "execution:5f0c2b1e9d3a4c0012345678",
        "core",
        "action:core:local",
    )
    enforcement = rule_enforcement_resource("e1", {"ref": "examples.on_push", "uid": ""})
    assert (enforcement.pack, enforcement.parent_uid) == ("examples", "rule:examples:on_push")
    assert rule_enforcement_resource("e2", {}).parent_uid is None
    key = key_value_pair_resource("st2kv.user", "alice:token")
    assert (key.uid, key.scope, key.name) == (
        "key_value_pair:st2kv.user:alice:token",
        "st2kv.user",
        "alice:token",
    )
    assert inquiry_resource(None).uid == "inquiry"
    asked = inquiry_resource("examples.approve")
    assert (asked.pack, asked.parent_uid) == ("examples", "action:examples:approve")
