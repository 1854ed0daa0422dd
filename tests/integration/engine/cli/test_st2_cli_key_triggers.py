"""Rules on the datastore's triggers through the official ``st2`` CLI: ``st2 key set``, ``load``
and ``delete`` fire ``core.st2.key_value_pair.create|update|value_change|delete``, a rule on each
runs its action, and the execution carries the rule and trigger instance as on StackStorm."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.support import st2cli
from tests.integration.support.st2cli import RunningEngine, St2, eventually, listing, ok

SERVICES = ("st2api", "st2auth", "st2scheduler", "st2actionrunner", "st2rulesengine")
OPERATIONS = ("create", "update", "value_change", "delete")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("kv")
    (directory / "packs").mkdir()
    # Announcements, not the poll, must wake the rules engine.
    extra = f"[rulesengine]\npoll_interval = 30\n[content]\npacks_base_paths = {directory}/packs\n"
    with st2cli.running_engine(directory, None, SERVICES, extra) as running:
        yield running


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    return st2cli.logged_in(engine, tmp_path / "home")


def write_rule(directory: Path, operation: str, name: str | None = None) -> Path:
    """A rule on one key-value trigger that echoes what the payload says, for keys ``kvt.*``."""
    key = "new_object" if operation == "value_change" else "object"
    document = {
        "name": name or f"on_{operation}",
        "pack": "kvt",
        "enabled": True,
        "trigger": {"type": f"core.st2.key_value_pair.{operation}"},
        "criteria": {f"trigger.{key}.name": {"type": "startswith", "pattern": "kvt."}},
        "action": {
            "ref": "core.local",
            "parameters": {"cmd": f"echo {operation} {{{{ trigger.{key}.name }}}}"},
        },
    }
    path = directory / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def enforced(st2: St2, operation: str, count: int, rule: str | None = None) -> list[dict[str, Any]]:
    rule_ref = f"kvt.{rule or f'on_{operation}'}"

    def check() -> list[dict[str, Any]] | None:
        found = listing(st2("rule-enforcement", "list", "--rule", rule_ref, "-j"))
        return found if len(found) >= count else None

    result: list[dict[str, Any]] = eventually(check, f"{count} enforcements of {rule_ref}")
    return result


def finished(st2: St2, execution_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        shown: dict[str, Any] = ok(st2("execution", "get", execution_id, "--attr", "all", "-j"))
        return shown if shown["status"] in ("succeeded", "failed") else None

    result: dict[str, Any] = eventually(check, f"execution {execution_id}")
    return result


def test_a_rule_on_each_key_value_trigger_fires(st2: St2, tmp_path: Path) -> None:
    for operation in OPERATIONS:
        ok(st2("rule", "create", str(write_rule(tmp_path, operation)), "-j"))

    assert st2("key", "set", "kvt.color", "red").returncode == 0
    [created] = enforced(st2, "create", 1)
    assert st2("key", "set", "kvt.color", "red").returncode == 0
    enforced(st2, "update", 1)
    assert st2("key", "set", "kvt.color", "blue").returncode == 0
    [changed] = enforced(st2, "value_change", 1)
    enforced(st2, "update", 2)
    assert st2("key", "delete", "kvt.color").returncode == 0
    enforced(st2, "delete", 1)
    # Setting the same value again changed nothing: one value_change only.
    assert len(enforced(st2, "value_change", 1)) == 1

    # st2 key load writes every key of the file through the API as well.
    exported = tmp_path / "keys.json"
    exported.write_text(
        json.dumps([{"name": "kvt.a", "value": "1"}, {"name": "kvt.b", "value": "2"}])
    )
    assert st2("key", "load", str(exported)).returncode == 0
    enforced(st2, "create", 3)
    # Keys outside the criteria fire their triggers too; the rules do not match them.
    assert st2("key", "set", "other", "x").returncode == 0
    instances = listing(
        st2("trigger-instance", "list", "--trigger", "core.st2.key_value_pair.create", "-j")
    )
    assert len(instances) == 4

    execution = finished(st2, created["execution_id"])
    assert execution["status"] == "succeeded", execution
    assert execution["result"]["stdout"].strip() == "create kvt.color"
    assert finished(st2, changed["execution_id"])["result"]["stdout"].strip() == (
        "value_change kvt.color"
    )


def test_a_secret_set_through_the_cli_reaches_rules_encrypted(st2: St2, tmp_path: Path) -> None:
    assert st2("key", "set", "kvt.password", "hunter2", "--encrypt").returncode == 0

    def instance() -> dict[str, Any] | None:
        trigger = "core.st2.key_value_pair.create"
        found = listing(
            st2("trigger-instance", "list", "--trigger", trigger, "-a", "id", "payload", "-j")
        )
        mine = [i for i in found if i["payload"]["object"]["name"] == "kvt.password"]
        return mine[0] if mine else None

    shown = eventually(instance, "the secret's create instance")
    assert shown["payload"]["object"]["secret"] is True
    assert shown["payload"]["object"]["encrypted"] is True
    assert "hunter2" not in json.dumps(shown)


def test_an_execution_a_rule_requested_carries_the_rule_and_trigger(
    st2: St2, tmp_path: Path
) -> None:
    """As ``st2 execution get --attr all -j`` shows on StackStorm (st2reactor's enforcer and
    st2common's executions service): ``context.rule``, ``context.trigger_instance`` and the
    document's ``rule``, ``trigger``, ``trigger_type`` and ``trigger_instance``. Without
    ``--attr``, the CLI asks for ``context.user`` alone, there as here."""
    ok(st2("rule", "create", str(write_rule(tmp_path, "create", "context")), "-j"))
    assert st2("key", "set", "kvt.context", "x").returncode == 0
    [enforcement] = enforced(st2, "create", 1, rule="context")
    execution = finished(st2, enforcement["execution_id"])
    instance_id = enforcement["trigger_instance_id"]
    context = execution["context"]
    assert context["user"] == "stanley"
    assert context["pack"] == "core"
    assert context["trigger_instance"] == {"id": instance_id, "name": None}
    rule = ok(st2("rule", "get", "kvt.context", "-j"))
    assert context["rule"] == {"id": rule["id"], "name": "context", "ref": "kvt.context"}
    assert execution["rule"]["ref"] == "kvt.context"
    assert execution["rule"]["id"] == rule["id"]
    assert execution["trigger"]["ref"] == "core.st2.key_value_pair.create"
    assert execution["trigger"]["type"] == "core.st2.key_value_pair.create"
    assert execution["trigger_type"]["ref"] == "core.st2.key_value_pair.create"
    assert execution["trigger_type"]["payload_schema"]["properties"] == {"object": {}}
    assert execution["trigger_instance"]["id"] == instance_id
    assert execution["trigger_instance"]["trigger"] == "core.st2.key_value_pair.create"
    assert execution["trigger_instance"]["payload"]["object"]["name"] == "kvt.context"
    default = ok(st2("execution", "get", execution["id"], "-j"))
    assert default["context"] == {"user": "stanley"}
    picked = ok(st2("execution", "get", execution["id"], "--attr", "context", "rule", "-j"))
    assert picked["context"]["rule"]["ref"] == picked["rule"]["ref"] == "kvt.context"


def test_concurrent_sets_of_one_key_follow_each_other(engine: RunningEngine, st2: St2) -> None:
    """As StackStorm's API does, a set holds the key's lock: eight concurrent first sets of one
    key all succeed, one as the create and seven as updates."""
    headers = {"X-Auth-Token": st2.env["ST2_AUTH_TOKEN"]}

    def put(value: int) -> int:
        with httpx.Client(base_url=engine.api_url, headers=headers, timeout=30) as client:
            return client.put("/keys/race", json={"name": "race", "value": str(value)}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(put, range(8))) == [200] * 8

    def count(operation: str) -> int:
        trigger = f"core.st2.key_value_pair.{operation}"
        found = listing(
            st2("trigger-instance", "list", "--trigger", trigger, "-a", "id", "payload", "-j")
        )
        return sum(1 for i in found if i["payload"]["object"]["name"] == "race")

    assert (count("create"), count("update")) == (1, 7)


WRITER = """\
from st2common.runners.base_action import Action


class WriteKey(Action):
    def run(self, name, value):
        self.action_service.set_value(name, value, local=False)
        self.action_service.delete_value(name, local=False)
        return name
"""


def test_an_actions_datastore_writes_fire_rules(
    engine: RunningEngine, st2: St2, tmp_path: Path
) -> None:
    pack = engine.directory / "packs" / "kvtpack"
    (pack / "actions").mkdir(parents=True)
    (pack / "pack.yaml").write_text(
        yaml.safe_dump(
            {
                "ref": "kvtpack",
                "name": "kvtpack",
                "description": "Writes datastore keys.",
                "version": "0.1.0",
                "author": "Tests",
            }
        )
    )
    (pack / "actions" / "write_key.py").write_text(WRITER)
    (pack / "actions" / "write_key.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "write_key",
                "runner_type": "python-script",
                "entry_point": "write_key.py",
                "enabled": True,
                "parameters": {
                    "name": {"type": "string", "required": True},
                    "value": {"type": "string", "required": True},
                },
            }
        )
    )
    assert st2("pack", "register", "kvtpack").returncode == 0
    for operation in ("create", "delete"):
        rule = write_rule(tmp_path, operation, f"action_{operation}")
        ok(st2("rule", "create", str(rule), "-j"))
    ran = ok(st2("run", "kvtpack.write_key", "name=kvt.by_action", "value=1", "-j"))
    assert ran["status"] == "succeeded", ran
    for operation in ("create", "delete"):
        [enforcement] = enforced(st2, operation, 1, rule=f"action_{operation}")
        execution = finished(st2, enforcement["execution_id"])
        assert execution["result"]["stdout"].strip() == f"{operation} kvt.by_action"
