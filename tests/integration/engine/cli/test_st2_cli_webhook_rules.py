"""Webhook -> rule -> action end to end: the official ``st2`` CLI and curl against st2api,
st2auth, st2scheduler, st2actionrunner and st2rulesengine running as real processes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.support.st2cli import (
    RunningEngine,
    St2,
    eventually,
    listing,
    logged_in,
    ok,
    running_engine,
)

SERVICES = (
    "st2api",
    "st2auth",
    "st2scheduler",
    "st2actionrunner",
    "st2rulesengine",
    "st2timersengine",
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    extra = "[rulesengine]\npoll_interval = 0.5\n"
    with running_engine(tmp_path_factory.mktemp("webhook-rules"), None, SERVICES, extra) as running:
        yield running


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    return logged_in(engine, tmp_path / "home")


def curl(engine: RunningEngine, st2: St2, url: str, body: Any) -> tuple[int, str]:
    """POST ``body`` as JSON to ``/v1/webhooks/<url>`` with curl; return status and body."""
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            f"X-Auth-Token: {st2.env['ST2_AUTH_TOKEN']}",
            "--data-binary",
            json.dumps(body),
            f"{engine.api_url}/webhooks/{url}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    text, _, code = done.stdout.rpartition("\n")
    return int(code), text


def rule_file(directory: Path, name: str, url: str, **extra: Any) -> Path:
    document: dict[str, Any] = {
        "name": name,
        "pack": "e2e",
        "enabled": True,
        "trigger": {"type": "core.st2.webhook", "parameters": {"url": url}},
        "criteria": {
            "trigger.body.status": {"type": "equals", "pattern": "firing"},
            "trigger.body.labels.severity": {"type": "inside", "pattern": ["critical", "page"]},
        },
        "action": {
            "ref": "core.local",
            "parameters": {"cmd": "printf '%s|' {{ trigger.body.labels.instance }} done"},
        },
        **extra,
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def instances_of(st2: St2, trigger_ref: str) -> list[dict[str, Any]]:
    return listing(st2("trigger-instance", "list", "--trigger", trigger_ref, "-n", "100", "-j"))


def processed(st2: St2, trigger_ref: str, count: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        found = instances_of(st2, trigger_ref)
        if len(found) >= count and all(i["status"] == "processed" for i in found):
            return found
        return None

    result: list[dict[str, Any]] = eventually(check, f"{count} processed instances")
    return result


def test_webhook_rule_action_end_to_end(engine: RunningEngine, st2: St2, tmp_path: Path) -> None:
    rule = ok(st2("rule", "create", str(rule_file(tmp_path, "restart", "e2e/alert")), "-j"))
    trigger_ref = rule["trigger"]["ref"]
    hooks = {hook["url"] for hook in ok(st2("webhook", "list", "-j"))}
    assert "e2e/alert" in hooks
    assert ok(st2("webhook", "get", "e2e/alert", "-j"))["ref"] == trigger_ref

    body = {"status": "firing", "labels": {"severity": "critical", "instance": "db 1; reboot"}}
    code, echoed = curl(engine, st2, "e2e/alert", body)
    assert code == 202, echoed
    assert json.loads(echoed) == body

    [instance] = processed(st2, trigger_ref, 1)
    shown = ok(st2("trigger-instance", "get", instance["id"], "-j"))
    assert shown["payload"]["body"] == body
    [enforcement] = eventually(
        lambda: listing(st2("rule-enforcement", "list", "--rule", "e2e.restart", "-j")),
        "the enforcement",
    )
    assert enforcement["trigger_instance_id"] == instance["id"]
    execution_id = enforcement["execution_id"]

    def finished() -> dict[str, Any] | None:
        shown: dict[str, Any] = ok(st2("execution", "get", execution_id, "--attr", "all", "-j"))
        return shown if shown["status"] in ("succeeded", "failed") else None

    execution = eventually(finished, "the execution")
    assert execution["status"] == "succeeded", execution["result"]
    assert execution["parameters"] == {"cmd": "printf '%s|' 'db 1; reboot' done"}
    assert execution["result"]["stdout"] == "db 1; reboot|done|"
    assert execution["rule"]["ref"] == "e2e.restart"
    assert execution["trigger_instance"]["id"] == instance["id"]
    listed = ok(st2("execution", "list", "--trigger_instance", instance["id"], "-j"))
    assert [item["id"] for item in listed] == [execution_id]

    # A body the criteria do not match: an instance, processed, and no execution.
    code, _ = curl(engine, st2, "e2e/alert", {"status": "resolved", "labels": body["labels"]})
    assert code == 202
    code, _ = curl(engine, st2, "e2e/alert", {"status": "firing", "labels": {"severity": "info"}})
    assert code == 202
    processed(st2, trigger_ref, 3)
    enforced = listing(st2("rule-enforcement", "list", "--rule", "e2e.restart", "-j"))
    assert len(enforced) == 1

    # A disabled rule runs nothing.
    assert ok(st2("rule", "disable", "e2e.restart", "-j"))["enabled"] is False
    code, _ = curl(engine, st2, "e2e/alert", body)
    assert code == 202
    processed(st2, trigger_ref, 4)
    assert len(listing(st2("rule-enforcement", "list", "--rule", "e2e.restart", "-j"))) == 1

    # Enabled again, it runs again; deleting the last rule on the url removes the webhook.
    assert ok(st2("rule", "enable", "e2e.restart", "-j"))["enabled"] is True
    code, _ = curl(engine, st2, "e2e/alert", body)
    assert code == 202
    processed(st2, trigger_ref, 5)
    eventually(
        lambda: len(listing(st2("rule-enforcement", "list", "--rule", "e2e.restart", "-j"))) == 2,
        "the second enforcement",
    )
    assert st2("rule", "delete", "e2e.restart").returncode == 0
    code, text = curl(engine, st2, "e2e/alert", body)
    assert code == 404
    assert "faultstring" in json.loads(text)


def test_the_generic_st2_webhook_names_the_trigger_in_its_body(
    engine: RunningEngine, st2: St2, tmp_path: Path
) -> None:
    rule = ok(st2("rule", "create", str(rule_file(tmp_path, "generic", "e2e/generic")), "-j"))
    trigger_ref = rule["trigger"]["ref"]
    labels = {"severity": "page", "instance": "$(hostname)"}
    code, text = curl(
        engine,
        st2,
        "st2",
        {"trigger": trigger_ref, "payload": {"body": {"status": "firing", "labels": labels}}},
    )
    assert code == 202, text
    [enforcement] = eventually(
        lambda: listing(st2("rule-enforcement", "list", "--rule", "e2e.generic", "-j")),
        "the enforcement",
    )
    execution = eventually(
        lambda: (lambda e: e if e["status"] in ("succeeded", "failed") else None)(
            ok(st2("execution", "get", enforcement["execution_id"], "--attr", "all", "-j"))
        ),
        "the execution",
    )
    assert execution["result"]["stdout"] == "$(hostname)|done|"
    code, text = curl(engine, st2, "st2", {"payload": {}})
    assert code == 400
    assert json.loads(text)["faultstring"] == "Trigger not specified."


def test_an_unknown_webhook_is_404_and_an_unauthenticated_post_401(
    engine: RunningEngine, st2: St2
) -> None:
    code, text = curl(engine, st2, "no/such/hook", {"status": "firing"})
    assert code == 404
    assert "not registered" in json.loads(text)["faultstring"]
    anonymous = subprocess.run(
        [
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-d",
            "{}",
            f"{engine.api_url}/webhooks/st2",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert anonymous.stdout == "401"


def test_a_finished_cli_run_fires_an_actiontrigger_rule(
    engine: RunningEngine, st2: St2, tmp_path: Path
) -> None:
    ok(
        st2(
            "rule",
            "create",
            str(
                rule_file(
                    tmp_path,
                    "from_generic",
                    "unused/generic",
                    trigger={"type": "core.st2.generic.actiontrigger"},
                    criteria={
                        "trigger.action_ref": {"type": "equals", "pattern": "core.echo"},
                        "trigger.parameters.message": {"type": "startswith", "pattern": "chain"},
                    },
                    action={
                        "ref": "core.echo",
                        "parameters": {"message": "followed {{ trigger.execution_id }}"},
                    },
                )
            ),
            "-j",
        )
    )
    ran = ok(st2("run", "core.echo", "message=chain me", "-j"))
    assert ran["status"] == "succeeded"

    def followed() -> list[Any]:
        return [
            e
            for e in listing(st2("execution", "list", "--action", "core.echo", "-n", "50", "-j"))
            if e["id"] != ran["id"]
        ]

    [follow] = eventually(followed, "the execution started by the actiontrigger rule")
    shown = eventually(
        lambda: (lambda e: e if e["status"] == "succeeded" else None)(
            ok(st2("execution", "get", follow["id"], "--attr", "all", "-j"))
        ),
        "the follow-up execution",
    )
    assert shown["parameters"] == {"message": f"followed {ran['id']}"}
    assert shown["rule"]["ref"] == "e2e.from_generic"


def test_an_interval_timer_rule_runs_its_action_every_second(
    engine: RunningEngine, st2: St2, tmp_path: Path
) -> None:
    path = rule_file(
        tmp_path,
        "tick",
        "unused/tick",
        trigger={"type": "core.st2.IntervalTimer", "parameters": {"unit": "seconds", "delta": 1}},
        criteria={},
        action={"ref": "core.echo", "parameters": {"message": "tick {{ trigger.executed_at }}"}},
    )
    rule = ok(st2("rule", "create", str(path), "-j"))
    timers = ok(st2("timer", "list", "-a", "all", "-j"))
    assert rule["trigger"]["ref"] in {timer["ref"] for timer in timers}

    def ticks() -> list[Any] | None:
        found = listing(st2("rule-enforcement", "list", "--rule", "e2e.tick", "-n", "50", "-j"))
        return found if len(found) >= 3 else None

    enforced = eventually(ticks, "three timer firings")
    instance_ids = [enforcement["trigger_instance_id"] for enforcement in enforced]
    assert len(set(instance_ids)) == len(instance_ids)
    fired = [
        ok(st2("trigger-instance", "get", instance_id, "-j"))["payload"]["executed_at"]
        for instance_id in instance_ids
    ]
    assert len(set(fired)) == len(fired)
    assert st2("rule", "delete", "e2e.tick").returncode == 0
    assert rule["trigger"]["ref"] not in {
        t["ref"] for t in listing(st2("timer", "list", "-a", "all", "-j"))
    }
