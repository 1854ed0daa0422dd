"""End to end: a real Alertmanager routes alerts to poundcake-api with a bearer token, CABs run
in the engine, and the trail is queryable by ``request_id``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.stack import Product, eventually, running_product

CABS: dict[str, dict[str, Any]] = {
    "disk_full": {
        "name": "disk_full",
        "description": "Clean up a full disk, then say so",
        "alert_name_pattern": "^E2EDiskFull$",
        "severity_filter": ["critical"],
        "steps": [
            {
                "name": "clean",
                "action": "core.local",
                "parameters": {"cmd": "printf 'cleaning %s' {{ alert.labels.instance }}"},
                "expected_result": {"stdout_contains": "cleaning"},
                "timeout_seconds": 30,
            },
            {
                "name": "report",
                "action": "core.echo",
                "parameters": {"message": "done for {{ request_id }}"},
            },
        ],
    },
    "replayed": {
        "name": "replayed",
        "alert_name_pattern": "^E2EReplay$",
        "steps": [{"action": "core.local", "parameters": {"cmd": "echo replay"}}],
    },
    "mismatch": {
        "name": "mismatch",
        "alert_name_pattern": "^E2EMismatch$",
        "stop_on_first_failure": True,
        "steps": [
            {
                "name": "first",
                "action": "core.local",
                "parameters": {"cmd": "echo actual-output"},
                "expected_result": {"stdout_contains": "expected-output"},
            },
            {"name": "second", "action": "core.local", "parameters": {"cmd": "echo never"}},
        ],
    },
    "resolved_early": {
        "name": "resolved_early",
        "alert_name_pattern": "^E2EResolvedEarly$",
        "steps": [{"action": "core.local", "parameters": {"cmd": "echo should-not-run"}}],
    },
}


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    with running_product(tmp_path_factory.mktemp("e2e"), CABS) as running:
        yield running


def webhook_payload(
    name: str, *, status: str = "firing", fingerprint: str, starts_at: datetime
) -> dict[str, Any]:
    """An Alertmanager version 4 notification with one alert."""
    labels = {"alertname": name, "severity": "warning", "instance": "host-1"}
    ends = starts_at + timedelta(minutes=5) if status == "resolved" else None
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "poundcake",
        "groupLabels": {"alertname": name},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": "replayed"},
                "startsAt": starts_at.isoformat().replace("+00:00", "Z"),
                "endsAt": ends.isoformat().replace("+00:00", "Z")
                if ends
                else "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


def workflow_executions(product: Product, cab: str) -> list[dict[str, Any]]:
    response = product.engine_api(
        "GET", "/executions", params={"action": f"poundcake_cabs.{cab}", "limit": 100}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def test_the_cabs_are_engine_rules(product: Product) -> None:
    response = product.engine_api("GET", "/rules", params={"pack": "poundcake_cabs"})
    assert response.status_code == 200, response.text
    assert {rule["ref"] for rule in response.json()} == {f"poundcake_cabs.{n}" for n in CABS}
    listed = product.poundcake("cabs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "disk_full" in listed.stdout


def test_an_alert_through_alertmanager_is_remediated_and_traceable(product: Product) -> None:
    product.fire_through_alertmanager(
        {"alertname": "E2EDiskFull", "severity": "critical", "instance": "db-7; reboot"}
    )
    alert = product.alert_in_state("E2EDiskFull", "remediated", "failed")
    assert alert["state"] == "remediated", alert
    assert alert["cab_name"] == "disk_full"
    request_id = alert["request_id"]

    response = product.api("GET", f"/api/v1/requests/{request_id}")
    assert response.status_code == 200, response.text
    trail = response.json()["trail"]
    assert trail["call"]["path"] == "/api/v1/webhook"
    assert trail["call"]["status_code"] == 202
    assert "Bearer" not in str(trail)
    [delivered] = trail["alerts"]
    assert delivered["started_remediation"] is True
    remediation = delivered["remediation"]
    assert remediation["trigger_instance"]["status"] == "processed"
    [enforcement] = remediation["rule_enforcements"]
    assert enforcement["rule"] == "poundcake_cabs.disk_full"
    [workflow] = remediation["executions"]
    assert workflow["status"] == "succeeded"
    assert workflow["request_id"] == request_id
    steps = workflow["steps"]
    assert [step["action"] for step in steps] == ["core.local", "core.echo"]
    assert steps[0]["result"]["stdout"] == "cleaning db-7; reboot"
    assert steps[1]["result"]["stdout"].strip() == f"done for {request_id}"
    for order, step in enumerate(steps, start=1):
        assert step["request_id"] == request_id
        assert step["extension"]["step_order"] == order
        assert step["extension"]["result_matched"] is True
        assert step["extension"]["request_id"] == request_id
        assert step["extension"]["alert_id"] == alert["id"]

    shown = product.poundcake("requests", "show", request_id)
    assert shown.returncode == 0, shown.stderr
    assert "poundcake_cabs.disk_full" in shown.stdout
    assert "result matched: True" in shown.stdout

    # Resolved through Alertmanager: the episode closes.
    product.fire_through_alertmanager(
        {"alertname": "E2EDiskFull", "severity": "critical", "instance": "db-7; reboot"},
        endsAt=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    )
    eventually(
        lambda: [a for a in product.alerts("E2EDiskFull") if a["status"] == "resolved"],
        "the resolved notification",
    )


def test_each_payload_replayed_from_two_senders_remediates_once(product: Product) -> None:
    payload = webhook_payload(
        "E2EReplay", fingerprint="e2ereplay0000001", starts_at=datetime.now(UTC)
    )
    codes: list[int] = []

    def sender() -> None:
        for _ in range(3):
            codes.append(product.api("POST", "/api/v1/webhook", json=payload).status_code)

    senders = [threading.Thread(target=sender) for _ in range(2)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    assert codes == [202] * 6
    alert = product.alert_in_state("E2EReplay", "remediated", "failed")
    assert alert["state"] == "remediated"
    assert alert["delivery_count"] == 6
    detail = product.api("GET", f"/api/v1/alerts/{alert['id']}").json()["alert"]
    assert len(detail["deliveries"]) == 6
    assert len(set(detail["requests"])) == 6
    assert len(workflow_executions(product, "replayed")) == 1


def test_a_step_that_misses_its_expected_result_stops_the_cab(product: Product) -> None:
    payload = webhook_payload(
        "E2EMismatch", fingerprint="e2emismatch00001", starts_at=datetime.now(UTC)
    )
    assert product.api("POST", "/webhook", json=payload).status_code == 202
    alert = product.alert_in_state("E2EMismatch", "remediated", "failed")
    assert alert["state"] == "failed"
    assert "first" in (alert["state_reason"] or "")
    detail = product.api("GET", f"/api/v1/alerts/{alert['id']}").json()["alert"]
    [workflow] = detail["remediation"]["executions"]
    assert workflow["status"] == "failed"
    assert [step["action"] for step in workflow["steps"]] == ["core.local"]
    extension = workflow["steps"][0]["extension"]
    assert extension["result_matched"] is False
    assert extension["expected_result"] == {"stdout_contains": "expected-output"}
    reported = {step["name"]: step for step in workflow["result"]["steps"]}
    assert reported["second"]["status"] == "skipped"


def test_resolved_before_the_first_step_cancels_the_steps(product: Product) -> None:
    product.stop_engine_runner()
    try:
        started = datetime.now(UTC)
        firing = webhook_payload(
            "E2EResolvedEarly", fingerprint="e2eearly00000001", starts_at=started
        )
        assert product.api("POST", "/api/v1/webhook", json=firing).status_code == 202
        eventually(lambda: workflow_executions(product, "resolved_early"), "the CAB's workflow")
        resolved = webhook_payload(
            "E2EResolvedEarly", status="resolved", fingerprint="e2eearly00000001", starts_at=started
        )
        assert product.api("POST", "/api/v1/webhook", json=resolved).status_code == 202
        [workflow] = eventually(
            lambda: [
                e
                for e in workflow_executions(product, "resolved_early")
                if e["status"] == "canceled"
            ],
            "the workflow canceled",
        )
    finally:
        product.start_engine_runner()
    alert = product.alert_in_state("E2EResolvedEarly", "resolved")
    assert alert["status"] == "resolved"
    children = product.engine_api("GET", "/executions", params={"parent": workflow["id"]})
    assert children.json() == []


def test_the_alertmanager_token_is_required(product: Product, tmp_path: Path) -> None:
    response = product.api(
        "POST", "/api/v1/webhook", json={}, headers={"Authorization": "Bearer wrong"}
    )
    assert response.status_code == 401
    assert response.headers["X-Request-ID"]


def test_cabs_through_the_api(product: Product) -> None:
    listed = product.api("GET", "/api/v1/cabs")
    assert listed.status_code == 200, listed.text
    assert {cab["name"]: cab["applied"] for cab in listed.json()["cabs"]}["disk_full"] is True

    document = {
        "alert_name_pattern": "^E2EApiCab$",
        "steps": [{"action": "core.local", "parameters": {"cmd": "echo api"}}],
    }
    refused = product.api(
        "PUT",
        "/api/v1/cabs/api_cab",
        json={**document, "steps": [{"action": "core.nope", "parameters": {}}]},
    )
    assert refused.status_code == 400
    assert 'action "core.nope" does not exist' in refused.json()["error"]
    undeclared = product.api(
        "PUT",
        "/api/v1/cabs/api_cab",
        json={**document, "steps": [{"action": "core.local", "parameters": {"command": "x"}}]},
    )
    assert undeclared.status_code == 400
    assert "does not declare this parameter" in undeclared.json()["error"]
    bad_regex = product.api(
        "POST", "/api/v1/cabs/validate", json={**document, "name": "x", "alert_name_pattern": "("}
    )
    assert bad_regex.status_code == 400
    assert "alert_name_pattern" in bad_regex.json()["error"]

    created = product.api("PUT", "/api/v1/cabs/api_cab", json=document)
    assert created.status_code == 200, created.text
    rule = product.engine_api("GET", "/rules/poundcake_cabs.api_cab")
    assert rule.status_code == 200
    assert rule.json()["trigger"]["type"] == "poundcake.alert"
    assert product.api("GET", "/api/v1/cabs/api_cab").json()["cab"]["applied"] is True

    deleted = product.api("DELETE", "/api/v1/cabs/api_cab")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["removed"] == ["api_cab"]
    assert product.engine_api("GET", "/rules/poundcake_cabs.api_cab").status_code == 404
    assert product.api("GET", "/api/v1/cabs/api_cab").status_code == 404
    assert (
        product.api("GET", "/api/v1/cabs", headers={"Authorization": "Bearer no"}).status_code
        == 401
    )
