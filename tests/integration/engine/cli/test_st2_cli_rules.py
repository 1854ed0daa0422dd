"""The official ``st2`` CLI against the engine: rules, triggers, webhooks, trigger instances and
rule enforcements, with ``st2api`` and ``st2auth`` running as real processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kombu.connection import Connection
from kombu.entity import Queue

from poundcake.config import load_st2_config
from poundcake.engine.messaging import EVENT_EXCHANGE
from poundcake.ids import new_id
from tests.integration.support.mariadb import admin_sql
from tests.integration.support.st2cli import USER, RunningEngine, St2, listing, ok, running_engine

SERVICES = ("st2api", "st2auth")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.integration.support.mariadb import create_fixture_database, drop_fixture_database

    name = f"pctest_rules_{new_id()[-10:]}"
    create_fixture_database(name)
    try:
        yield name
    finally:
        drop_fixture_database(name)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[RunningEngine]:
    with running_engine(tmp_path_factory.mktemp("st2cli-rules"), database, SERVICES) as running:
        yield running


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    cli = St2(engine, tmp_path / "home")
    cli.login()
    return cli


@pytest.fixture
def api(engine: RunningEngine, st2: St2) -> Iterator[httpx.Client]:
    headers = {"X-Auth-Token": st2.env["ST2_AUTH_TOKEN"]}
    with httpx.Client(base_url=engine.api_url, headers=headers, timeout=30) as client:
        yield client


def rule_file(directory: Path, name: str, url: str, **extra: Any) -> Path:
    document: dict[str, Any] = {
        "name": name,
        "pack": "examples",
        "description": "Echo a field of each alert",
        "trigger": {"type": "core.st2.webhook", "parameters": {"url": url}},
        "criteria": {"trigger.body.status": {"type": "equals", "pattern": "firing"}},
        "action": {"ref": "core.local", "parameters": {"cmd": "echo {{ trigger.body.x }}"}},
        **extra,
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def rows(database: str, statement: str) -> list[tuple[object, ...]]:
    return admin_sql(statement, database=database)


def webhook_rows(database: str) -> dict[str, str]:
    return {
        str(url): str(trigger)
        for url, trigger in rows(database, "SELECT url, `trigger` FROM webhook_db")
    }


def ref_count(database: str, trigger_ref: str) -> int | None:
    found = rows(database, f"SELECT ref_count FROM trigger_db WHERE ref = '{trigger_ref}'")
    return int(str(found[0][0])) if found else None


def test_rule_lifecycle_with_the_cli(st2: St2, database: str, tmp_path: Path) -> None:
    created = ok(
        st2("rule", "create", str(rule_file(tmp_path, "echo_alert", "alertmanager")), "-j")
    )
    assert created["ref"] == "examples.echo_alert"
    assert created["uid"] == "rule:examples:echo_alert"
    assert created["enabled"] is False
    trigger = created["trigger"]
    assert trigger["type"] == "core.st2.webhook"
    assert trigger["parameters"] == {"url": "alertmanager"}
    assert trigger["ref"].startswith("core.")
    assert created["action"] == {
        "ref": "core.local",
        "parameters": {"cmd": "echo {{ trigger.body.x }}"},
    }
    assert created["criteria"] == {"trigger.body.status": {"type": "equals", "pattern": "firing"}}
    assert created["type"] == {"ref": "standard", "parameters": {}}
    assert created["context"] == {"user": USER}
    assert ref_count(database, trigger["ref"]) == 1

    listed = ok(st2("rule", "list", "-j"))
    assert "examples.echo_alert" in {rule["ref"] for rule in listed}
    assert {rule["pack"] for rule in ok(st2("rule", "list", "--pack", "examples", "-j"))} == {
        "examples"
    }
    assert listing(st2("rule", "list", "--pack", "nothing_here", "-j")) == []
    iftt = ok(st2("rule", "list", "--iftt", "--pack", "examples", "-j"))
    mine = next(rule for rule in iftt if rule["ref"] == "examples.echo_alert")
    assert mine == {
        "ref": "examples.echo_alert",
        "trigger": {"ref": trigger["ref"]},
        "action": {"ref": "core.local"},
        "enabled": False,
    }

    shown = ok(st2("rule", "get", "examples.echo_alert", "-j"))
    assert shown["id"] == created["id"]
    assert shown["trigger"] == trigger

    enabled = ok(st2("rule", "enable", "examples.echo_alert", "-j"))
    assert enabled["enabled"] is True
    assert enabled["trigger"] == trigger
    assert ref_count(database, trigger["ref"]) == 1
    assert "examples.echo_alert" in {r["ref"] for r in ok(st2("rule", "list", "--enabled", "-j"))}
    disabled = ok(st2("rule", "disable", "examples.echo_alert", "-j"))
    assert disabled["enabled"] is False
    assert "examples.echo_alert" in {r["ref"] for r in ok(st2("rule", "list", "--disabled", "-j"))}
    assert ref_count(database, trigger["ref"]) == 1

    deleted = st2("rule", "delete", "examples.echo_alert")
    assert deleted.returncode == 0, deleted.stderr
    gone = st2("rule", "get", "examples.echo_alert")
    assert gone.returncode == 1
    assert "not found" in (gone.stdout + gone.stderr).lower()
    assert ref_count(database, trigger["ref"]) is None


def test_rule_api_status_codes_and_paging(api: httpx.Client, tmp_path: Path) -> None:
    document = yaml.safe_load(rule_file(tmp_path, "paged_one", "paged").read_text())
    created = api.post("/rules", json=document)
    assert created.status_code == 201, created.text
    duplicate = api.post("/rules", json=document)
    assert duplicate.status_code == 409
    assert "examples.paged_one" in duplicate.json()["faultstring"]
    second = api.post("/rules", json={**document, "name": "paged_two"})
    assert second.status_code == 201, second.text
    page = api.get(
        "/rules/", params={"pack": "examples", "limit": 1, "trigger": "core.st2.webhook"}
    )
    assert page.status_code == 200
    assert int(page.headers["X-Total-Count"]) >= 2
    assert len(page.json()) == 1
    for name in ("paged_one", "paged_two"):
        assert api.delete(f"/rules/examples.{name}").status_code == 204
    assert api.get("/rules/examples.paged_one").status_code == 404


def test_rules_may_name_an_action_that_does_not_exist_yet(api: httpx.Client) -> None:
    document = {
        "name": "later",
        "trigger": {"type": "core.st2.generic.actiontrigger"},
        "action": {"ref": "examples.not_written_yet"},
    }
    created = api.post("/rules", json=document)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["pack"] == "default"
    assert body["trigger"] == {
        "type": "core.st2.generic.actiontrigger",
        "parameters": {},
        "ref": "core.st2.generic.actiontrigger",
    }
    assert api.delete(f"/rules/{body['id']}").status_code == 204
    shadow = api.get("/triggers/core.st2.generic.actiontrigger")
    assert shadow.status_code == 200


def test_rule_create_refuses_unknown_trigger_types_and_duplicates(st2: St2, tmp_path: Path) -> None:
    unknown = rule_file(tmp_path, "bad_trigger", "x")
    document = yaml.safe_load(unknown.read_text())
    document["trigger"] = {"type": "core.nope"}
    unknown.write_text(yaml.safe_dump(document))
    refused = st2("rule", "create", str(unknown))
    assert refused.returncode != 0
    assert (
        'Trigger "core.nope" defined in the rule does not exist in system or it\'s missing '
        'required "parameters" attribute'
    ) in refused.stdout + refused.stderr

    bad_criteria = rule_file(
        tmp_path, "bad_criteria", "x", criteria={"trigger.body.a": {"type": "sounds_like"}}
    )
    refused = st2("rule", "create", str(bad_criteria))
    assert refused.returncode != 0
    assert "sounds_like" in refused.stdout + refused.stderr

    path = rule_file(tmp_path, "twice", "twice")
    ok(st2("rule", "create", str(path), "-j"))
    again = st2("rule", "create", str(path))
    assert again.returncode != 0
    assert "409" in again.stdout + again.stderr
    assert st2("rule", "delete", "examples.twice").returncode == 0


def test_trigger_types_and_specs(st2: St2, tmp_path: Path) -> None:
    listed = ok(st2("trigger", "list", "-j"))
    refs = {item["ref"] for item in listed}
    assert {"core.st2.webhook", "core.st2.IntervalTimer", "core.st2.CronTimer"} <= refs
    assert ok(st2("trigger", "list", "-p", "core", "-j"))
    webhook_type = ok(st2("trigger", "get", "core.st2.webhook", "-j"))
    assert webhook_type["parameters_schema"]["properties"]["url"]["required"] is True

    ok(st2("rule", "create", str(rule_file(tmp_path, "spec_rule", "specs/hook")), "-j"))
    specs = ok(st2("trigger", "getspecs", "core.st2.webhook", "-j"))
    mine = [spec for spec in specs if spec["parameters"] == {"url": "specs/hook"}]
    assert len(mine) == 1
    assert mine[0]["type"] == "core.st2.webhook"
    assert "ref_count" not in mine[0]
    assert st2("rule", "delete", "examples.spec_rule").returncode == 0
    specs = listing(st2("trigger", "getspecs", "core.st2.webhook", "-j"))
    assert all(spec["parameters"] != {"url": "specs/hook"} for spec in specs)


def test_webhooks_exist_while_a_rule_uses_them(st2: St2, database: str, tmp_path: Path) -> None:
    first = ok(st2("rule", "create", str(rule_file(tmp_path, "hook_a", "team/hook")), "-j"))
    second = ok(st2("rule", "create", str(rule_file(tmp_path, "hook_b", "/team/hook/")), "-j"))
    assert first["trigger"]["ref"] != second["trigger"]["ref"]
    assert webhook_rows(database)["team/hook"] == first["trigger"]["ref"]

    listed = ok(st2("webhook", "list", "-j"))
    assert "team/hook" in {item["url"] for item in listed}
    shown = ok(st2("webhook", "get", "team/hook", "-j"))
    assert shown["parameters"]["url"] in ("team/hook", "/team/hook/")
    assert shown["type"] == "core.st2.webhook"

    assert st2("rule", "delete", "examples.hook_a").returncode == 0
    assert webhook_rows(database)["team/hook"] == second["trigger"]["ref"]
    assert st2("rule", "delete", "examples.hook_b").returncode == 0
    assert "team/hook" not in webhook_rows(database)
    listed = st2("webhook", "list", "-j")
    assert listed.returncode == 0
    assert "team/hook" not in listed.stdout
    assert st2("webhook", "get", "team/hook").returncode != 0


def test_rule_update_moves_the_webhook(api: httpx.Client, database: str, tmp_path: Path) -> None:
    document = yaml.safe_load(rule_file(tmp_path, "mover", "before/move").read_text())
    created = api.post("/rules", json=document).json()
    assert "before/move" in webhook_rows(database)
    sent_back = {key: value for key, value in created.items() if key != "ref"}
    sent_back["trigger"] = {**created["trigger"], "parameters": {"url": "after/move"}}
    updated = api.put(f"/rules/{created['id']}", json=sent_back)
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == created["id"]
    assert updated.json()["trigger"]["parameters"] == {"url": "after/move"}
    assert "before/move" not in webhook_rows(database)
    assert webhook_rows(database)["after/move"] == updated.json()["trigger"]["ref"]
    assert ref_count(database, created["trigger"]["ref"]) is None
    assert api.delete(f"/rules/{created['id']}").status_code == 204
    assert "after/move" not in webhook_rows(database)


def listen_for_trigger_instances(engine: RunningEngine) -> tuple[Connection, Any]:
    connection = Connection(load_st2_config(engine.config_path).messaging_url)
    queue = Queue(
        f"test.trigger_instances.{new_id()}",
        exchange=EVENT_EXCHANGE,
        routing_key="st2.trigger_instance__create",
        auto_delete=True,
    )
    return connection, connection.SimpleQueue(queue)


def test_posting_to_a_webhook_stores_and_announces_a_trigger_instance(
    st2: St2, api: httpx.Client, engine: RunningEngine, tmp_path: Path
) -> None:
    rule = ok(st2("rule", "create", str(rule_file(tmp_path, "fired", "alertmanager")), "-j"))
    trigger_ref = rule["trigger"]["ref"]
    connection, announcements = listen_for_trigger_instances(engine)
    try:
        body = {"status": "firing", "x": "hello", "alerts": [{"labels": {"severity": "page"}}]}
        posted = api.post("/webhooks/alertmanager", json=body, headers={"X-Alert-Source": "pytest"})
        assert posted.status_code == 202, posted.text
        assert posted.json() == body
        announced = announcements.get(timeout=15)
        announced.ack()
        assert announced.payload["trigger"] == trigger_ref
        instance_id = announced.payload["id"]
    finally:
        announcements.close()
        connection.release()

    listed = ok(st2("trigger-instance", "list", "--trigger", trigger_ref, "-j"))
    assert [item["id"] for item in listed] == [instance_id]
    assert listed[0]["status"] == "pending"
    shown = ok(st2("trigger-instance", "get", instance_id, "-j"))
    assert shown["trigger"] == trigger_ref
    payload = shown["payload"]
    assert payload["body"] == body
    assert payload["headers"]["X-Alert-Source"] == "pytest"
    assert payload["headers_lower"]["x-alert-source"] == "pytest"
    assert "X-Auth-Token" not in payload["headers"]
    assert "x-auth-token" not in payload["headers_lower"]
    assert st2.env["ST2_AUTH_TOKEN"] not in json.dumps(payload)

    by_status = ok(st2("trigger-instance", "list", "--status", "pending", "-j"))
    assert instance_id in {item["id"] for item in by_status}
    later = listing(st2("trigger-instance", "list", "-tg", "2999-01-01T00:00:00.000Z", "-j"))
    assert later == []

    resent = st2("trigger-instance", "re-emit", instance_id)
    assert resent.returncode == 0, resent.stderr
    assert f"Trigger instance {instance_id} succesfully re-sent." in resent.stdout
    both = ok(st2("trigger-instance", "list", "--trigger", trigger_ref, "-j"))
    copies = [item for item in both if item["id"] != instance_id]
    assert len(copies) == 1
    copy = ok(st2("trigger-instance", "get", copies[0]["id"], "-j"))
    assert copy["payload"]["__context"] == {"original_id": instance_id}
    assert copy["payload"]["body"] == body
    assert st2("rule", "delete", "examples.fired").returncode == 0


def test_webhook_bodies_forms_and_text(api: httpx.Client, st2: St2, tmp_path: Path) -> None:
    rule = ok(st2("rule", "create", str(rule_file(tmp_path, "bodies", "bodies")), "-j"))
    trigger_ref = rule["trigger"]["ref"]
    form = api.post("/webhooks/bodies", data={"a": "1", "b": "2"})
    assert form.status_code == 202, form.text
    text = api.post(
        "/webhooks/bodies/", content=b"plain words", headers={"Content-Type": "text/plain"}
    )
    assert text.status_code == 202, text.text
    assert text.json() == "plain words"
    bare = api.post("/webhooks/bodies", content=b"[1, 2]", headers={"Content-Type": ""})
    assert bare.status_code == 202, bare.text
    broken = api.post(
        "/webhooks/bodies", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["faultstring"].startswith("Failed to parse request body")
    stored = api.get("/triggerinstances", params={"trigger": trigger_ref}).json()
    bodies = [
        api.get(f"/triggerinstances/{item['id']}").json()["payload"]["body"] for item in stored
    ]
    assert sorted(map(json.dumps, bodies)) == sorted(
        map(json.dumps, [{"a": ["1"], "b": ["2"]}, "plain words", [1, 2]])
    )
    assert st2("rule", "delete", "examples.bodies").returncode == 0


def test_webhook_errors_and_api_key_in_the_query(
    api: httpx.Client, st2: St2, engine: RunningEngine, tmp_path: Path
) -> None:
    unknown = api.post("/webhooks/not/registered", json={})
    assert unknown.status_code == 404
    assert unknown.json() == {"faultstring": "Webhook not/registered not registered with st2"}
    anonymous = httpx.post(f"{engine.api_url}/webhooks/not/registered", json={})
    assert anonymous.status_code == 401

    ok(st2("rule", "create", str(rule_file(tmp_path, "keyed", "keyed")), "-j"))
    created = st2("apikey", "create", "-k", "-m", '{"used_by": "alertmanager"}')
    key = created.stdout.strip()
    posted = httpx.post(
        f"{engine.api_url}/webhooks/keyed", params={"st2-api-key": key}, json={"x": 1}
    )
    assert posted.status_code == 202, posted.text
    stored = api.get("/triggerinstances", params={"limit": 1}).json()[0]
    assert key not in json.dumps(api.get(f"/triggerinstances/{stored['id']}").json())
    assert st2("rule", "delete", "examples.keyed").returncode == 0


def test_generic_st2_webhook(api: httpx.Client) -> None:
    body = {"trigger": "core.st2.generic.actiontrigger", "payload": {"status": "failed"}}
    posted = api.post("/webhooks/st2", json=body)
    assert posted.status_code == 202, posted.text
    assert posted.json() == body
    stored = api.get(
        "/triggerinstances", params={"trigger": "core.st2.generic.actiontrigger", "limit": 1}
    ).json()
    assert stored[0]["payload"] == {"status": "failed"}
    missing = api.post("/webhooks/st2", json={"payload": {}})
    assert missing.status_code == 400
    assert missing.json()["faultstring"] == "Trigger not specified."
    unknown = api.post("/webhooks/st2", json={"trigger": "core.no_such_trigger"})
    assert unknown.status_code == 400


def test_rule_enforcements_are_listed(st2: St2, database: str) -> None:
    assert st2("rule-enforcement", "list").returncode == 0
    enforcement_id, instance_id, execution_id = new_id(), new_id(), new_id()
    rows(
        database,
        "INSERT INTO rule_enforcement_db (id, trigger_instance_id, execution_id, rule, rule_ref,"
        " enforced_at, status, failure_reason) VALUES ("
        f"'{enforcement_id}', '{instance_id}', '{execution_id}',"
        f' \'{{"ref": "examples.enforced", "id": "{new_id()}", "uid": "rule:examples:enforced"}}\','
        " 'examples.enforced', UTC_TIMESTAMP(6), 'succeeded', NULL)",
    )
    listed = ok(st2("rule-enforcement", "list", "--rule", "examples.enforced", "-j"))
    assert [item["id"] for item in listed] == [enforcement_id]
    assert listed[0]["rule"] == {"ref": "examples.enforced"}
    assert listing(st2("rule-enforcement", "list", "--rule", "examples.other", "-j")) == []
    shown = ok(st2("rule-enforcement", "get", enforcement_id, "-j"))
    assert shown["trigger_instance_id"] == instance_id
    assert shown["execution_id"] == execution_id
    by_execution = ok(st2("rule-enforcement", "list", "--execution", execution_id, "-j"))
    assert [item["id"] for item in by_execution] == [enforcement_id]
