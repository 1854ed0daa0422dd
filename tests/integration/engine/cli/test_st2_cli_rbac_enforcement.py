"""RBAC enforced, with the official ``st2`` CLI against st2api, st2auth and st2stream on MariaDB
(``[rbac] enable = True``, ``backend = default``): each system role and custom roles over packs,
actions, executions, rules, keys, webhooks and API keys; allowed, denied with StackStorm's 403
message as the CLI prints it, and the key list filtered to what the caller may see."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.support.commands import command_environment, run_command
from tests.integration.support.st2cli import (
    PASSWORD,
    STREAM_SERVICES,
    USER,
    CliResult,
    RunningEngine,
    St2,
    listing,
    ok,
    output,
    running_engine,
    wait_for,
)

pytestmark = pytest.mark.integration

RBAC_ON = "[rbac]\nenable = True\nbackend = default\n"
USERS = ("adam", "olivia", "alice", "bob", "carol", "dave")
ROLES = {
    "core_runner.yaml": """\
name: core_runner
description: runs core.local, sees the core pack
permission_grants:
  - resource_uid: "pack:core"
    permission_types: [action_view]
  - resource_uid: "action:core:local"
    permission_types: [action_execute]
  - resource_uid: "key_value_pair:st2kv.system:shared_setting"
    permission_types: [key_value_pair_view]
  # `st2 run` reads the runner type from the list, as with StackStorm.
  - permission_types: [action_list, execution_list, runner_type_list]
""",
    "rule_author.yaml": """\
name: rule_author
permission_grants:
  - resource_uid: "pack:default"
    permission_types: [rule_all]
  - resource_uid: "action:core:noop"
    permission_types: [action_execute]
  - resource_uid: "webhook:carol/hook"
    permission_types: [webhook_all]
""",
    "inspector.yaml": """\
name: inspector
permission_grants:
  - resource_uid: "pack:linux"
    permission_types: [pack_view]
  - resource_uid: "pack:default"
    permission_types: [action_alias_view]
  - resource_uid: "policy:default:one_at_a_time"
    permission_types: [policy_view]
  - resource_uid: "runner_type:local-shell-cmd"
    permission_types: [runner_type_view]
  - permission_types: [policy_type_list, rule_list, timer_list, inquiry_respond]
""",
}
ASSIGNMENTS = {
    f"{USER}.yaml": f"username: {USER}\nroles: [system_admin]\n",
    "adam.yaml": "username: adam\nroles: [admin]\n",
    "olivia.yaml": "username: olivia\nroles: [observer]\n",
    "alice.yaml": "username: alice\nroles: [core_runner]\n",
    "carol.yaml": "username: carol\nroles: [rule_author]\n",
    "dave.yaml": "username: dave\nroles: [inspector]\n",
}


def allowed(result: CliResult, expected: str) -> None:
    """The CLI succeeded and printed ``expected``."""
    assert result.returncode == 0, output(result)
    assert expected in result.stdout, result.stdout


def denied(result: CliResult, message: str) -> None:
    """The CLI failed with StackStorm's 403 and ``message`` as its faultstring."""
    text = output(result)
    assert result.returncode != 0, text
    assert "403" in text and "Forbidden" in text, text
    assert message in text, text


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("rbac-on")
    with running_engine(directory, services=STREAM_SERVICES, extra_conf=RBAC_ON) as running:
        env = command_environment(directory)
        for name in USERS:
            created = run_command(
                "st2-setup-auth",
                "-u",
                name,
                "-p",
                PASSWORD,
                "--config-file",
                str(running.config_path),
                env=env,
            )
            assert created.returncode == 0, created.stderr
        root = directory / "data" / "rbac"
        for folder, files in (("roles", ROLES), ("assignments", ASSIGNMENTS)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            for file_name, text in files.items():
                (root / folder / file_name).write_text(text)
        (root / "mappings").mkdir(exist_ok=True)
        applied = run_command(
            "st2-apply-rbac-definitions", "--config-file", str(running.config_path), env=env
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr
        yield running


def cli(engine: RunningEngine, name: str) -> St2:
    client = St2(engine, engine.directory / "homes" / name)
    client.login(name, PASSWORD)
    return client


@pytest.fixture(scope="module")
def clis(engine: RunningEngine) -> dict[str, St2]:
    return {name: cli(engine, name) for name in (USER, *USERS)}


def run_id(result: CliResult) -> str:
    assert result.returncode == 0, output(result)
    found = re.search(r"st2 execution get ([0-9a-f]{24})", result.stdout)
    assert found, result.stdout
    return found.group(1)


def test_system_admin_and_admin_do_everything(clis: dict[str, St2]) -> None:
    for name in (USER, "adam"):
        st2 = clis[name]
        assert any(row["ref"] == "core.local" for row in ok(st2("action", "list", "-j")))
        assert {row["name"] for row in ok(st2("role", "list", "-j"))} >= {"core_runner"}
        finished = ok(st2("run", "core.local", "cmd=echo admin", "-j"))
        assert finished["status"] == "succeeded", finished
        assert (
            ok(st2("key", "set", f"{name}_system_key", "v", "-j"))["name"] == f"{name}_system_key"
        )
    me = httpx.get(
        f"{clis['adam'].engine.api_url}/user",
        headers={"X-Auth-Token": clis["adam"].env["ST2_AUTH_TOKEN"]},
        timeout=30,
    ).json()
    assert me["rbac"] == {"enabled": True, "roles": ["admin"], "is_admin": True}


def test_observer_reads_but_changes_nothing(clis: dict[str, St2]) -> None:
    st2 = clis["olivia"]
    assert any(row["ref"] == "core.local" for row in ok(st2("action", "list", "-j")))
    assert ok(st2("action", "get", "core.local", "-j"))["ref"] == "core.local"
    assert {row["action"]["ref"] for row in listing(st2("execution", "list", "-j"))} >= {
        "core.local"
    }
    denied(
        st2("run", "core.local", "cmd=echo no"),
        'User "olivia" doesn\'t have required permission "action_execute" on resource '
        '"action:core:local"',
    )
    denied(st2("role", "list"), "Administrator access required")
    denied(st2("execution", "list", "-n", "500"), 'Limit "500" specified, maximum value is "100"')
    assert len(listing(clis[USER]("execution", "list", "-n", "-1", "-j"))) >= 2
    denied(
        st2("key", "set", "observer_key", "v"),
        'User "olivia" doesn\'t have required permission "key_value_pair_set" on resource '
        '"key_value_pair:st2kv.system:observer_key"',
    )
    denied(
        st2("pack", "register", "core"),
        'User "olivia" doesn\'t have required permission "pack_register"',
    )
    # Observers read every system key (and only their own user keys).
    names = {row["name"] for row in listing(st2("key", "list", "-j"))}
    assert f"{USER}_system_key" in names


def test_no_role_means_nothing_but_your_own_keys(
    engine: RunningEngine, clis: dict[str, St2]
) -> None:
    st2 = clis["bob"]
    denied(st2("action", "list"), 'User "bob" doesn\'t have required permission "action_list"')
    denied(
        st2("action", "get", "core.local"),
        'User "bob" doesn\'t have required permission "action_view" on resource '
        '"action:core:local"',
    )
    denied(
        st2("execution", "list"), 'User "bob" doesn\'t have required permission "execution_list"'
    )
    ok(st2("key", "set", "mine", "bobs value", "--scope", "user", "-j"))
    keys = listing(st2("key", "list", "--scope", "all", "-j"))
    assert [(row["name"], row["scope"]) for row in keys] == [("mine", "st2kv.user")]
    denied(
        st2("key", "get", f"{USER}_system_key"),
        f'on resource "key_value_pair:st2kv.system:{USER}_system_key"',
    )
    # Another user's scope is closed to everyone but administrators.
    denied(
        st2("key", "list", "--scope", "user", "--user", "alice"),
        '"user" attribute can only be provided by admins',
    )
    admin = clis[USER]
    seen = listing(admin("key", "list", "--scope", "user", "--user", "bob", "-j"))
    assert [(row["name"], row["value"], row["user"]) for row in seen] == [
        ("mine", "bobs value", "bob")
    ]
    token = {"X-Auth-Token": clis["alice"].env["ST2_AUTH_TOKEN"]}
    other = httpx.get(
        f"{engine.api_url}/keys/mine", params={"scope": "user", "user": "bob"}, headers=token
    )
    assert other.status_code == 403
    assert other.json() == {"faultstring": '"user" attribute can only be provided by admins'}
    denied(
        st2("key", "list", "--scope", "system", "--decrypt"),
        "Decrypt option requires administrator access",
    )
    denied(
        st2("key", "list", "-n", "-1"),
        "Administrator access required to be able to specify limit=-1 and retrieve all the records",
    )


def test_custom_role_over_a_pack_and_one_action(clis: dict[str, St2]) -> None:
    alice, admin = clis["alice"], clis[USER]
    finished = ok(alice("run", "core.local", "cmd=echo alice", "-j"))
    assert finished["status"] == "succeeded", finished
    assert finished["context"]["user"] == "alice"
    denied(
        alice("run", "core.echo", "message=x"),
        'User "alice" doesn\'t have required permission "action_execute" on resource '
        '"action:core:echo"',
    )
    # action_view on the pack: every core action is visible, another pack's are not.
    assert ok(alice("action", "get", "core.echo", "-j"))["ref"] == "core.echo"
    denied(alice("action", "get", "linux.file_touch"), 'on resource "action:linux:file_touch"')
    # Executions inherit from their action: alice re-runs her own core.local runs, sees the
    # admin's core.noop run but may neither re-run nor cancel it.
    rerun = alice("execution", "re-run", finished["id"], "-j")
    assert rerun.returncode == 0, output(rerun)
    noop = run_id(admin("run", "core.noop", "-a"))
    assert ok(alice("execution", "get", noop, "-j"))["action"]["ref"] == "core.noop"
    denied(
        alice("execution", "re-run", noop),
        'User "alice" doesn\'t have required permission "action_execute" on resource '
        '"action:core:noop"',
    )
    delayed = run_id(admin("run", "core.noop", "--delay", "600", "-a"))
    denied(
        alice("execution", "cancel", delayed),
        f'User "alice" doesn\'t have required permission "execution_stop" on resource '
        f'"execution:{delayed}"',
    )
    canceled = admin("execution", "cancel", delayed)
    assert canceled.returncode == 0, output(canceled)
    # Only administrators run actions as someone else.
    as_bob = httpx.post(
        f"{alice.engine.api_url}/executions",
        headers={"X-Auth-Token": alice.env["ST2_AUTH_TOKEN"]},
        json={"action": "core.local", "parameters": {"cmd": "id"}, "user": "bob"},
        timeout=30,
    )
    assert as_bob.status_code == 403
    assert as_bob.json() == {"faultstring": '"user" attribute can only be provided by admins'}
    # A grant on one system key opens that key to her, and the list shows it alone.
    ok(admin("key", "set", "shared_setting", "42", "-j"))
    assert ok(alice("key", "get", "shared_setting", "-j"))["value"] == "42"
    names = {row["name"] for row in listing(alice("key", "list", "-j"))}
    assert names == {"shared_setting"}


def test_custom_role_over_rules_and_webhooks(clis: dict[str, St2], tmp_path: Path) -> None:
    carol = clis["carol"]
    rule = tmp_path / "rule.yaml"

    def rule_file(pack: str, name: str, action: str, trigger: str = "") -> str:
        trigger = trigger or "type: core.st2.IntervalTimer\n  parameters: {unit: hours, delta: 1}"
        rule.write_text(
            f"name: {name}\npack: {pack}\nenabled: false\ntrigger:\n  {trigger}\n"
            f"action:\n  ref: {action}\n"
        )
        return str(rule)

    created = ok(carol("rule", "create", rule_file("default", "hourly", "core.noop"), "-j"))
    assert created["ref"] == "default.hourly"
    assert ok(carol("rule", "get", "default.hourly", "-j"))["action"]["ref"] == "core.noop"
    denied(
        carol("rule", "create", rule_file("default", "other", "core.local")),
        'User "carol" doesn\'t have required (action_execute) permission to use action core.local',
    )
    denied(
        carol("rule", "create", rule_file("core", "mine", "core.noop")),
        'User "carol" doesn\'t have required permission "rule_create" on resource "rule:core:mine"',
    )
    denied(
        carol(
            "rule",
            "create",
            rule_file(
                "default", "hooked", "core.noop", "type: core.st2.webhook\n  parameters: {url: x}"
            ),
        ),
        'User "carol" doesn\'t have required permission (webhook_create) to use trigger '
        "core.st2.webhook",
    )
    hooked = ok(
        carol(
            "rule",
            "create",
            rule_file(
                "default",
                "carols_hook",
                "core.noop",
                "type: core.st2.webhook\n  parameters: {url: carol/hook}",
            ),
            "-j",
        )
    )
    assert hooked["trigger"]["type"] == "core.st2.webhook"
    denied(carol("rule", "list"), 'User "carol" doesn\'t have required permission "rule_list"')
    api = carol.engine.api_url
    token = {"X-Auth-Token": carol.env["ST2_AUTH_TOKEN"]}
    sent = httpx.post(f"{api}/webhooks/carol/hook", headers=token, json={"a": 1}, timeout=30)
    assert sent.status_code == 202, sent.text
    bob = {"X-Auth-Token": clis["bob"].env["ST2_AUTH_TOKEN"]}
    refused = httpx.post(f"{api}/webhooks/carol/hook", headers=bob, json={"a": 1}, timeout=30)
    assert refused.status_code == 403
    assert refused.json() == {
        "faultstring": 'User "bob" doesn\'t have required permission "webhook_send" on resource '
        '"webhook:carol/hook"'
    }
    deleted = carol("rule", "delete", "default.hourly")
    assert deleted.returncode == 0, output(deleted)


def test_api_keys_act_with_their_users_roles(clis: dict[str, St2]) -> None:
    admin = clis[USER]
    keys: dict[str, str] = {}
    for name in ("alice", "bob"):
        created = ok(admin("apikey", "create", "-u", name, "-j"))
        keys[name] = created["key"]
    for name, key in keys.items():
        st2 = St2(admin.engine, admin.engine.directory / "homes" / f"{name}-key")
        st2.env["ST2_API_KEY"] = key
        if name == "alice":
            finished = ok(st2("run", "core.local", "cmd=echo by key", "-j"))
            assert finished["context"]["user"] == "alice"
        else:
            # The CLI reads the action first: without a role bob may not even view it.
            denied(
                st2("run", "core.local", "cmd=echo by key"),
                'User "bob" doesn\'t have required permission "action_view" on resource '
                '"action:core:local"',
            )
        denied(
            st2("apikey", "create"),
            f'User "{name}" doesn\'t have required permission "api_key_create"',
        )
        denied(
            st2("apikey", "list"), f'User "{name}" doesn\'t have required permission "api_key_list"'
        )


def test_role_assignments_are_the_admins_and_your_own(clis: dict[str, St2]) -> None:
    alice = clis["alice"]
    own = listing(alice("role-assignment", "list", "-u", "alice", "-j"))
    assert [row["role"] for row in own] == ["core_runner"]
    denied(alice("role-assignment", "list"), "Administrator or self access required")
    denied(alice("role-assignment", "list", "-u", "bob"), "Administrator or self access required")
    every = listing(clis["adam"]("role-assignment", "list", "-j"))
    assert {row["user"] for row in every} >= {"alice", "olivia", "carol"}


def test_the_stream_serves_administrators_only(engine: RunningEngine, clis: dict[str, St2]) -> None:
    url = f"{engine.stream_url}/stream"
    observer = httpx.get(
        url, params={"x-auth-token": clis["olivia"].env["ST2_AUTH_TOKEN"]}, timeout=30
    )
    assert observer.status_code == 403
    assert observer.json()["faultstring"].startswith(
        'User "olivia" may not read the event stream: with RBAC enabled this engine serves the '
        "stream to administrators only"
    )
    with httpx.stream(
        "GET", url, params={"x-auth-token": clis["adam"].env["ST2_AUTH_TOKEN"]}, timeout=30
    ) as admin:
        assert admin.status_code == 200
        assert admin.headers["content-type"].startswith("text/event-stream")


def test_custom_role_over_packs_runners_policies_aliases_and_timers(
    clis: dict[str, St2], tmp_path: Path
) -> None:
    dave, bob, admin = clis["dave"], clis["bob"], clis[USER]
    alias = tmp_path / "alias.yaml"
    alias.write_text(
        "name: run_cmd\npack: default\naction_ref: core.local\nformats: ['run {{cmd}}']\n"
    )
    ok(admin("action-alias", "create", str(alias), "-j"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "name: one_at_a_time\npack: default\nresource_ref: core.local\n"
        "policy_type: action.concurrency\nparameters: {threshold: 1}\n"
    )
    ok(admin("policy", "create", str(policy), "-j"))

    allowed(dave("pack", "get", "linux", "-j"), "linux")
    denied(dave("pack", "get", "core"), 'permission "pack_view" on resource "pack:core"')
    denied(dave("pack", "list"), 'User "dave" doesn\'t have required permission "pack_list"')

    allowed(dave("runner", "get", "local-shell-cmd", "-j"), "local-shell-cmd")
    denied(
        dave("runner", "get", "python-script"),
        'permission "runner_type_view" on resource "runner_type:python-script"',
    )
    denied(
        dave("runner", "list"), 'User "dave" doesn\'t have required permission "runner_type_list"'
    )

    allowed(dave("policy-type", "list", "-j"), "concurrency")
    denied(
        dave("policy-type", "get", "action.concurrency"),
        'permission "policy_type_view" on resource "policy_type:action:concurrency"',
    )
    allowed(dave("policy", "get", "default.one_at_a_time", "-j"), "one_at_a_time")
    denied(dave("policy", "list"), 'User "dave" doesn\'t have required permission "policy_list"')
    denied(
        dave("policy", "delete", "default.one_at_a_time"),
        'permission "policy_delete" on resource "policy:default:one_at_a_time"',
    )

    allowed(dave("action-alias", "get", "default.run_cmd", "-j"), "run_cmd")
    denied(dave("action-alias", "list"), 'doesn\'t have required permission "action_alias_list"')
    # The CLI finds the alias through the list first (action_alias_list); the API itself:
    denied(dave("action-alias", "delete", "default.run_cmd"), '"action_alias_list"')
    refused = httpx.delete(
        f"{dave.engine.api_url}/actionalias/default.run_cmd",
        headers={"X-Auth-Token": dave.env["ST2_AUTH_TOKEN"]},
        timeout=30,
    )
    assert refused.status_code == 403
    assert refused.json() == {
        "faultstring": 'User "dave" doesn\'t have required permission "action_alias_delete" on '
        'resource "action_alias:default:run_cmd"'
    }
    denied(
        dave("action-alias", "match", "run id"),
        'User "dave" doesn\'t have required permission "action_alias_match"',
    )

    # Rule enforcements are listed with rule_list; timers with timer_list.
    listing(dave("rule-enforcement", "list", "-j"))  # asserts success
    denied(
        bob("rule-enforcement", "list"),
        'User "bob" doesn\'t have required permission "rule_enforcement_list"',
    )
    listing(dave("timer", "list", "-j"))  # asserts success
    denied(bob("timer", "list"), 'User "bob" doesn\'t have required permission "timer_list"')
    # As in StackStorm, trigger types need only a login; inquiries need inquiry_list.
    allowed(bob("trigger", "list", "-j"), "core.st2.webhook")
    denied(bob("inquiry", "list"), 'User "bob" doesn\'t have required permission "inquiry_list"')
    assert listing(clis["olivia"]("inquiry", "list", "-j")) == []


def test_inquiries_need_a_grant_and_one_of_their_roles(clis: dict[str, St2]) -> None:
    admin, bob, olivia, dave = clis[USER], clis["bob"], clis["olivia"], clis["dave"]
    anyone = run_id(admin("run", "core.ask", "-a"))
    observers = run_id(admin("run", "core.ask", "roles=observer", "-a"))
    headers = {"X-Auth-Token": admin.env["ST2_AUTH_TOKEN"]}
    with httpx.Client(base_url=admin.engine.api_url, headers=headers, timeout=30) as api:
        for inquiry in (anyone, observers):
            wait_for(api, inquiry, {"pending"})
        denied(
            bob("inquiry", "get", anyone),
            'User "bob" doesn\'t have required permission "inquiry_view"',
        )
        allowed(olivia("inquiry", "get", anyone, "-j"), anyone)
        denied(
            olivia("inquiry", "respond", anyone, "-r", '{"continue": true}'),
            'User "olivia" doesn\'t have required permission "inquiry_respond"',
        )
        # dave holds inquiry_respond but not the role the second inquiry asks for.
        refused = dave("inquiry", "respond", observers, "-r", '{"continue": true}')
        assert refused.returncode != 0
        assert (
            f'User "dave" does not have permission to respond to inquiry "{observers}".'
            in output(refused)
        )
        answered = dave("inquiry", "respond", anyone, "-r", '{"continue": true}')
        assert answered.returncode == 0, output(answered)
        assert wait_for(api, anyone, {"succeeded"})["result"]["response"] == {"continue": True}
        assert api.get(f"/executions/{observers}").json()["status"] == "pending"
