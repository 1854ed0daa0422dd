"""The web UI's server side (``/``, ``/ui/session``, ``/ui/api/*``) on the whole running product:
real engine processes, poundcake-api, workers and MariaDB. Every response any test sees is
checked for the engine's API key."""

from __future__ import annotations

import json
import shlex
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.stack import TOKEN, Product, running_product
from tests.integration.support.mariadb import admin_sql
from tests.integration.support.st2cli import PASSWORD, USER, eventually
from tests.paths import FIXTURE_PACKS

CAB = "ui_api_disk"
CABS: dict[str, dict[str, Any]] = {
    CAB: {
        "name": CAB,
        "description": "Free a full disk",
        "alert_name_pattern": "^UiApiDiskFull$",
        "severity_filter": ["critical"],
        "steps": [
            {
                "name": "clean",
                "action": "core.local",
                "parameters": {"cmd": "echo cleaning {{ alert.labels.instance }}"},
            },
            {
                "name": "report",
                "action": "core.echo",
                "parameters": {
                    "message": "done for {{ request_id }} on {{ alert.labels.instance }}"
                },
            },
        ],
    },
}
SECRET_PASSWORD = "sudo-Secret-7f3a91"
UITREE = FIXTURE_PACKS / "uitree"


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    with running_product(tmp_path_factory.mktemp("web-api"), CABS, packs=[UITREE]) as running:
        yield running


class Browser:
    """An HTTP client that keeps the session cookie and CSRF token, and every response."""

    def __init__(self, product: Product, seen: list[httpx.Response]) -> None:
        self.product = product
        self.cookie: str | None = None
        self.csrf: str | None = None
        self.client = httpx.Client(
            base_url=product.api_url,
            timeout=60,
            event_hooks={"response": [lambda response: seen.append(response)]},
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookie is not None:
            headers["Cookie"] = f"poundcake_session={self.cookie}"
        if method != "GET" and self.csrf is not None:
            headers.setdefault("X-CSRF-Token", self.csrf)
        response = self.client.request(method, path, headers=headers, **kwargs)
        response.read()
        return response

    def log_in(self, username: str = USER, password: str = PASSWORD) -> httpx.Response:
        response = self.request(
            "POST", "/ui/session", json={"username": username, "password": password}
        )
        if response.status_code == 200:
            self.cookie = response.cookies["poundcake_session"]
            self.csrf = response.json()["csrf_token"]
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def browser(product: Product) -> Iterator[Browser]:
    seen: list[httpx.Response] = []
    client = Browser(product, seen)
    yield client
    client.client.close()
    for response in seen:
        exposed = response.content.decode("utf-8", "replace") + str(response.headers)
        assert product.api_key not in exposed, f"{response.url} shows the engine's API key"
        assert SECRET_PASSWORD not in exposed, f"{response.url} shows a secret parameter"


@pytest.fixture
def operator(browser: Browser) -> Browser:
    assert browser.log_in().status_code == 200
    return browser


def payload(
    name: str, labels: dict[str, str] | None = None, *, fingerprint: str | None = None
) -> dict[str, Any]:
    """An Alertmanager version 4 notification with one firing alert."""
    alert_labels = {"alertname": name, "severity": "critical", "instance": "host-1"}
    alert_labels.update(labels or {})
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "status": "firing",
        "receiver": "poundcake",
        "groupLabels": {"alertname": name},
        "commonLabels": alert_labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": alert_labels,
                "annotations": {"summary": "web api test"},
                "startsAt": "2026-11-28T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": fingerprint or uuid.uuid4().hex[:16],
            }
        ],
    }


def deliver(product: Product, document: dict[str, Any]) -> str:
    response = product.api("POST", "/api/v1/webhook", json=document)
    assert response.status_code == 202, response.text
    request_id: str = response.json()["request_id"]
    return request_id


def count(product: Product, table: str) -> int:
    rows = admin_sql(f"SELECT COUNT(*) FROM `{table}`", database=product.database)
    return int(str(rows[0][0]))


def run_action(product: Product, parameters: dict[str, Any]) -> str:
    return product.start_execution("core.local", parameters)


def engine_status(product: Product, execution_id: str) -> str:
    response = product.engine_api("GET", f"/executions/{execution_id}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


# --- pages and sessions -----------------------------------------------------------------------


def test_the_page_and_its_files_are_served(browser: Browser) -> None:
    page = browser.request("GET", "/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert '<main id="main"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    script = browser.request("GET", "/ui/static/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    for outside in ("/ui/static/../routers/ui_session.py", "/ui/static/%2e%2e/app.py"):
        assert browser.request("GET", outside).status_code == 404


def test_login_sets_a_strict_http_only_cookie(browser: Browser) -> None:
    response = browser.log_in()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["username"] == USER
    assert len(body["csrf_token"]) >= 32
    assert body["expires_at"].endswith("Z")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("poundcake_session=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/"):
        assert attribute.lower() in cookie.lower()
    assert browser.get("/ui/session")["username"] == USER
    stored = admin_sql(
        "SELECT token_hash FROM poundcake_ui_sessions", database=browser.product.database
    )
    assert browser.cookie is not None
    assert all(browser.cookie not in str(row[0]) for row in stored)


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(browser: Browser) -> None:
    wrong = browser.log_in(USER, "not-the-password")
    unknown = browser.log_in("nobody-" + uuid.uuid4().hex[:6], PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid username or password."}
        assert "set-cookie" not in response.headers
    calls = admin_sql(
        "SELECT COUNT(*) FROM poundcake_api_calls WHERE path = '/ui/session'",
        database=browser.product.database,
    )
    assert int(str(calls[0][0])) >= 2
    everything = admin_sql(
        "SELECT * FROM poundcake_api_calls WHERE path = '/ui/session'",
        database=browser.product.database,
    )
    assert PASSWORD not in repr(everything)
    assert "not-the-password" not in repr(everything)


def test_the_data_api_needs_a_session(browser: Browser) -> None:
    response = browser.request("GET", "/ui/api/dashboard")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not logged in."}
    browser.cookie = "made-up-token"
    assert browser.request("GET", "/ui/api/alerts").json() == {"detail": "Not logged in."}
    assert browser.request("GET", "/ui/session").status_code == 401


def test_an_expired_session_is_refused(operator: Browser) -> None:
    assert operator.request("GET", "/ui/api/dashboard").status_code == 200
    admin_sql(
        "UPDATE poundcake_ui_sessions SET expires_at = '2020-01-01 00:00:00' "
        f"WHERE username = '{USER}'",
        database=operator.product.database,
    )
    for path in ("/ui/session", "/ui/api/dashboard"):
        response = operator.request("GET", path)
        assert response.status_code == 401
        assert response.json() == {"detail": "Session expired. Log in again."}


def test_logout_ends_the_session(operator: Browser) -> None:
    cookie = operator.cookie
    response = operator.request("DELETE", "/ui/session")
    assert response.status_code == 204
    assert 'poundcake_session=""' in response.headers["set-cookie"]
    operator.cookie = cookie
    assert operator.request("GET", "/ui/api/dashboard").status_code == 401


def test_writes_need_the_csrf_token(operator: Browser, product: Product) -> None:
    execution_id = run_action(product, {"cmd": "echo csrf"})
    for token in ("", "wrong-token"):
        response = operator.request(
            "POST", f"/ui/api/executions/{execution_id}/rerun", headers={"X-CSRF-Token": token}
        )
        assert response.status_code == 403
        assert response.json() == {"detail": "Missing or wrong CSRF token."}
    disable = operator.request(
        "PUT",
        f"/ui/api/rules/poundcake_cabs.{CAB}/enabled",
        json={"enabled": False},
        headers={"X-CSRF-Token": "wrong-token"},
    )
    assert disable.status_code == 403
    rule = product.engine_api("GET", f"/rules/poundcake_cabs.{CAB}").json()
    assert rule["enabled"] is True


# --- alerts and the dashboard -----------------------------------------------------------------


def test_alerts_filters_deliveries_and_the_trail(operator: Browser, product: Product) -> None:
    name = "UiApiDiskFull"
    fingerprint = uuid.uuid4().hex[:16]
    first = deliver(product, payload(name, {"instance": "db-7"}, fingerprint=fingerprint))
    second = deliver(product, payload(name, {"instance": "db-7"}, fingerprint=fingerprint))
    other = f"UiApiOther{uuid.uuid4().hex[:6]}"
    deliver(product, payload(other, {"severity": "warning"}))

    def remediated() -> dict[str, Any] | None:
        items = operator.get("/ui/api/alerts", params={"name": name, "state": "remediated"})
        found = [a for a in items["items"] if a["fingerprint"] == fingerprint]
        return found[0] if found else None

    alert = eventually(remediated, "the alert remediated", timeout=120)
    assert alert["name"] == name and alert["cab_name"] == CAB
    for key in ("id", "severity", "status", "state_reason", "starts_at", "labels", "created_at"):
        assert key in alert
    warnings = operator.get("/ui/api/alerts", params={"severity": "warning", "name": other})
    assert [a["name"] for a in warnings["items"]] == [other]
    assert operator.get("/ui/api/alerts", params={"severity": "info", "name": other}) == {
        "items": []
    }

    detail = operator.get(f"/ui/api/alerts/{alert['id']}")
    deliveries = detail["deliveries"]
    assert [d["request_id"] for d in deliveries] == [first, second]
    assert [d["started_remediation"] for d in deliveries] == [True, False]
    assert all(d["status"] == "firing" and d["received_at"] for d in deliveries)

    trail = operator.get(f"/ui/api/requests/{first}")
    assert trail == product.api("GET", f"/api/v1/requests/{first}").json()["trail"]
    assert trail["alerts"][0]["remediation"]["executions"][0]["status"] == "succeeded"
    missing = operator.request("GET", "/ui/api/alerts/000000000000000000000000")
    assert missing.status_code == 404 and "detail" in missing.json()


def test_dashboard_figures_match_the_rows(operator: Browser, product: Product) -> None:
    deliver(product, payload(f"UiApiDash{uuid.uuid4().hex[:6]}"))
    dashboard = operator.get("/ui/api/dashboard")
    by_state = dict(
        admin_sql(
            "SELECT state, COUNT(*) FROM poundcake_alerts GROUP BY state", database=product.database
        )
    )
    for state, number in dashboard["alerts_by_state"].items():
        assert number == int(str(by_state.get(state, 0))), state
    assert sum(dashboard["alerts_by_state"].values()) == count(product, "poundcake_alerts")
    remediation = dashboard["remediation"]
    assert remediation["remediated"] == int(str(by_state.get("remediated", 0)))
    assert remediation["failed"] == int(str(by_state.get("failed", 0)))
    ended = remediation["remediated"] + remediation["failed"]
    assert remediation["success_rate"] == (remediation["remediated"] / ended if ended else None)

    days = dashboard["executions_per_day"]
    today = datetime.now(UTC).date().isoformat()
    assert len(days) == 7 and days[-1]["date"] == today
    rows = admin_sql(
        f"SELECT status, COUNT(*) FROM execution_db WHERE DATE(start_timestamp) = '{today}' "
        "GROUP BY status",
        database=product.database,
    )
    statuses = {str(status): int(str(number)) for status, number in rows}
    assert days[-1]["succeeded"] == statuses.get("succeeded", 0)
    assert days[-1]["failed"] == sum(statuses.get(s, 0) for s in ("failed", "timeout", "abandoned"))
    assert days[-1]["succeeded"] + days[-1]["failed"] + days[-1]["other"] == sum(statuses.values())

    recent = dashboard["recent"]
    assert 0 < len(recent) <= 20
    assert [item["at"] for item in recent] == sorted((item["at"] for item in recent), reverse=True)
    assert {item["kind"] for item in recent} <= {"alert", "execution", "request"}


# --- executions -------------------------------------------------------------------------------


def test_executions_filters_and_detail_mask_secrets(operator: Browser, product: Product) -> None:
    marker = uuid.uuid4().hex[:8]
    execution_id = run_action(
        product, {"cmd": f"echo out-{marker}", "sudo_password": SECRET_PASSWORD}
    )
    eventually(lambda: engine_status(product, execution_id) == "succeeded", "the execution ran")

    listed = operator.get("/ui/api/executions", params={"action": "core.local", "limit": 100})
    assert listed["total"] >= 1
    assert execution_id in [item["id"] for item in listed["items"]]
    assert all(item["action"] == "core.local" for item in listed["items"])
    starts = [item["start_timestamp"] for item in listed["items"]]
    assert starts == sorted(starts, reverse=True)
    mine = next(item for item in listed["items"] if item["id"] == execution_id)
    assert mine["status"] == "succeeded" and mine["parent"] is None
    assert mine["elapsed_seconds"] is not None

    top_level = operator.get("/ui/api/executions", params={"parent": "null", "limit": 500})
    assert all(item["parent"] is None for item in top_level["items"])
    failed = operator.get("/ui/api/executions", params={"status": "failed"})
    assert all(item["status"] == "failed" for item in failed["items"])
    later = operator.get(
        "/ui/api/executions", params={"timestamp_gt": mine["start_timestamp"], "limit": 500}
    )
    assert execution_id not in [item["id"] for item in later["items"]]
    bad = operator.request("GET", "/ui/api/executions", params={"timestamp_gt": "yesterday"})
    assert bad.status_code == 400 and "timestamp_gt" in bad.json()["detail"]

    detail = operator.get(f"/ui/api/executions/{execution_id}")
    assert detail["action"] == "core.local" and detail["runner"] == "local-shell-cmd"
    assert detail["parameters"]["sudo_password"] == "********"
    assert detail["result"]["stdout"] == f"out-{marker}"
    assert detail["status"] == "succeeded" and detail["log"]
    output = operator.get(f"/ui/api/executions/{execution_id}/output")
    assert any(f"out-{marker}" in item["data"] for item in output["items"])
    assert operator.request("GET", "/ui/api/executions/000000000000000000000000").status_code == 404


def test_rerun_and_cancel(operator: Browser, product: Product) -> None:
    original = run_action(product, {"cmd": "echo again"})
    eventually(lambda: engine_status(product, original) == "succeeded", "the first run")
    rerun = operator.request("POST", f"/ui/api/executions/{original}/rerun")
    assert rerun.status_code == 201, rerun.text
    new_id = rerun.json()["id"]
    assert new_id != original
    eventually(lambda: engine_status(product, new_id) == "succeeded", "the re-run")
    again = product.engine_api("GET", f"/executions/{new_id}").json()
    assert again["parameters"]["cmd"] == "echo again"

    sleeping = run_action(product, {"cmd": "sleep 60", "timeout": 120})
    eventually(lambda: engine_status(product, sleeping) == "running", "the sleep to start")
    canceled = operator.request("POST", f"/ui/api/executions/{sleeping}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["id"] == sleeping
    assert canceled.json()["status"] in ("canceling", "canceled")
    eventually(lambda: engine_status(product, sleeping) == "canceled", "the cancel")
    finished = operator.request("POST", f"/ui/api/executions/{original}/cancel")
    assert finished.status_code == 409 and finished.json()["detail"]


# --- task trees -------------------------------------------------------------------------------


def shape(nodes: list[dict[str, Any]]) -> list[Any]:
    """A tree's names, kinds and nesting, for comparing with what the workflow ran."""
    return [
        (node["kind"], node["name"], node["item_id"], shape(node["tasks"]), node["more"])
        for node in nodes
    ]


def walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from walk(node["tasks"])


def test_a_workflow_task_tree_pauses_and_resumes(
    operator: Browser, product: Product, tmp_path: Path
) -> None:
    gate, last_gate = tmp_path / "gate", tmp_path / "last-gate"
    names = ["ann", "bob", "cy", "dee", "eve"]
    parameters = {"gate": str(gate), "last_gate": str(last_gate), "names": names}
    workflow = product.start_execution("uitree.tree", {**parameters, "token": SECRET_PASSWORD})
    tasks_path = f"/ui/api/executions/{workflow}/tasks"

    def holding() -> dict[str, Any] | None:
        tree: dict[str, Any] = operator.get(tasks_path)
        statuses = [(node["name"], node["status"]) for node in tree["tasks"]]
        return tree if statuses == [("greet", "succeeded"), ("hold", "running")] else None

    tree = eventually(holding, "greet done and hold running", timeout=90)
    assert tree["id"] == workflow and tree["runner"] == "orquesta" and tree["workflow"] is True
    greet, hold = tree["tasks"]
    assert greet["action"] == "core.echo" and hold["action"] == "core.local"
    assert greet["end_timestamp"] and hold["end_timestamp"] is None
    assert greet["start_timestamp"] <= hold["start_timestamp"]
    assert hold["task_execution_id"] and hold["kind"] == "task" and hold["item_id"] is None
    detail = operator.get(f"/ui/api/executions/{workflow}")
    assert detail["workflow"] is True and detail["pausable"] is True
    assert detail["parameters"]["token"] == "********"
    refused = operator.request("POST", f"/ui/api/executions/{hold['id']}/pause")
    assert refused.status_code == 409
    assert "local-shell-cmd" in refused.json()["detail"]

    no_token = operator.request(
        "POST", f"/ui/api/executions/{workflow}/pause", headers={"X-CSRF-Token": "wrong"}
    )
    assert no_token.status_code == 403
    paused = operator.request("POST", f"/ui/api/executions/{workflow}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json() == {"id": workflow, "status": "pausing"}
    # A running task finishes; nothing after it starts while the workflow is paused.
    gate.touch()
    last_gate.touch()
    eventually(lambda: engine_status(product, workflow) == "paused", "the workflow paused")
    tree = operator.get(tasks_path)
    assert [(node["name"], node["status"]) for node in tree["tasks"]] == [
        ("greet", "succeeded"),
        ("hold", "succeeded"),
    ]
    assert tree["status"] == "paused"

    resumed = operator.request("POST", f"/ui/api/executions/{workflow}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] in ("resuming", "running")
    eventually(lambda: engine_status(product, workflow) == "succeeded", "the workflow", 120)
    not_paused = operator.request("POST", f"/ui/api/executions/{workflow}/resume")
    assert not_paused.status_code == 409 and not_paused.json()["detail"]

    tree = operator.get(tasks_path, params={"items": 2})
    fan_items = [("task", "fan", i, [], 0) for i in (0, 1)]
    assert shape(tree["tasks"]) == [
        ("task", "greet", None, [], 0),
        ("task", "hold", None, [], 0),
        ("items", "fan", None, fan_items, 3),
        ("task", "nested", None, [("task", "inside", None, [], 0)], 0),
        ("task", "last", None, [], 0),
    ]
    assert tree["shown"] == 7 and tree["truncated"] is False and tree["items"] == 2
    fan, nested = tree["tasks"][2:4]
    assert fan["status"] == "succeeded" and fan["id"] is None and fan["action"] == "core.echo"
    assert nested["runner"] == "orquesta" and nested["action"] == "uitree.inner"
    nodes = list(walk(tree["tasks"]))
    starts = [node["start_timestamp"] for node in nodes if node["kind"] == "task"]
    assert starts == sorted(starts)
    assert all(node["status"] == "succeeded" for node in nodes)

    everything = operator.get(tasks_path)
    assert [item["item_id"] for item in everything["tasks"][2]["tasks"]] == [0, 1, 2, 3, 4]
    assert everything["tasks"][2]["more"] == 0 and everything["shown"] == 10
    # The "more" link: the executions list narrowed to that task's items.
    listed = operator.get(
        "/ui/api/executions",
        params={"parent": workflow, "task_execution": fan["task_execution_id"]},
    )
    assert listed["total"] == 5
    assert {item["id"] for item in listed["items"]} == {
        item["id"] for item in everything["tasks"][2]["tasks"]
    }
    for item in everything["tasks"][2]["tasks"]:
        child = operator.get(f"/ui/api/executions/{item['id']}")
        assert child["context"]["orquesta"]["item_id"] == item["item_id"]

    for bad in ("0", "201", "many"):
        response = operator.request("GET", tasks_path, params={"items": bad})
        assert response.status_code == 400 and "items" in response.json()["detail"]
    missing = operator.request("GET", "/ui/api/executions/000000000000000000000000/tasks")
    assert missing.status_code == 404 and missing.json()["detail"]


def test_chain_and_cab_task_trees(operator: Browser, product: Product) -> None:
    chain = product.start_execution("uitree.chain", {})
    eventually(lambda: engine_status(product, chain) == "succeeded", "the chain", 90)
    tree = operator.get(f"/ui/api/executions/{chain}/tasks")
    assert tree["runner"] == "action-chain"
    assert shape(tree["tasks"]) == [
        ("task", "first", None, [], 0),
        ("task", "second", None, [("task", "inside", None, [], 0)], 0),
    ]
    detail = operator.get(f"/ui/api/executions/{chain}")
    assert detail["workflow"] is True and detail["pausable"] is True

    fingerprint = uuid.uuid4().hex[:16]
    deliver(product, payload("UiApiDiskFull", {"instance": "tree-1"}, fingerprint=fingerprint))

    def remediated() -> dict[str, Any] | None:
        items = operator.get("/ui/api/alerts", params={"name": "UiApiDiskFull"})["items"]
        found = [a for a in items if a["fingerprint"] == fingerprint and a["state"] == "remediated"]
        return found[0] if found else None

    alert = eventually(remediated, "the CAB's run", timeout=120)
    steps = operator.get(f"/ui/api/executions/{alert['workflow_execution_id']}/tasks")
    assert steps["runner"] == "steps"
    assert [(n["name"], n["action"], n["status"]) for n in steps["tasks"]] == [
        ("clean", "core.local", "succeeded"),
        ("report", "core.echo", "succeeded"),
    ]
    detail = operator.get(f"/ui/api/executions/{alert['workflow_execution_id']}")
    assert detail["workflow"] is True and detail["pausable"] is False

    single = run_action(product, {"cmd": "echo alone"})
    leaf = operator.get(f"/ui/api/executions/{single}/tasks")
    assert leaf["workflow"] is False and leaf["tasks"] == [] and leaf["shown"] == 0


# --- actions, rules, CABs ---------------------------------------------------------------------


def test_packs_actions_rules_and_cabs(operator: Browser, product: Product) -> None:
    packs = {pack["ref"] for pack in operator.get("/ui/api/packs")["items"]}
    assert {"core", "poundcake_cabs"} <= packs
    actions = operator.get("/ui/api/actions", params={"pack": "core"})["items"]
    local = next(action for action in actions if action["ref"] == "core.local")
    assert local["runner_type"] == "local-shell-cmd"
    assert local["parameters"]["cmd"]["required"] is True
    assert local["parameters"]["sudo_password"]["secret"] is True
    assert all(action["pack"] == "core" for action in actions)

    rules = operator.get("/ui/api/rules", params={"pack": "poundcake_cabs"})["items"]
    rule = next(item for item in rules if item["ref"] == f"poundcake_cabs.{CAB}")
    assert rule["cab"] == CAB and rule["trigger"] == "poundcake.alert"
    assert rule["action"]["ref"] == f"poundcake_cabs.{CAB}"

    cabs = operator.get("/ui/api/cabs")["items"]
    cab = next(item for item in cabs if item["name"] == CAB)
    assert cab["alertname"] == "^UiApiDiskFull$" and cab["severities"] == ["critical"]
    assert cab["rule_ref"] == f"poundcake_cabs.{CAB}" and cab["enabled"] is True
    assert [(s["order"], s["name"], s["action"]) for s in cab["steps"]] == [
        (1, "clean", "core.local"),
        (2, "report", "core.echo"),
    ]


def test_a_rule_is_disabled_and_enabled_in_the_engine(operator: Browser, product: Product) -> None:
    ref = f"poundcake_cabs.{CAB}"
    try:
        disabled = operator.request("PUT", f"/ui/api/rules/{ref}/enabled", json={"enabled": False})
        assert disabled.status_code == 200, disabled.text
        assert disabled.json()["enabled"] is False and disabled.json()["cab"] == CAB
        assert product.engine_api("GET", f"/rules/{ref}").json().get("enabled") in (False, None)
        cab = next(c for c in operator.get("/ui/api/cabs")["items"] if c["name"] == CAB)
        assert cab["enabled"] is False
        bad = operator.request("PUT", f"/ui/api/rules/{ref}/enabled", json={"enabled": "no"})
        assert bad.status_code == 400 and "enabled" in bad.json()["detail"]
        unknown = operator.request(
            "PUT", "/ui/api/rules/nothing.here/enabled", json={"enabled": True}
        )
        assert unknown.status_code == 404
    finally:
        enabled = operator.request("PUT", f"/ui/api/rules/{ref}/enabled", json={"enabled": True})
    assert enabled.status_code == 200, enabled.text
    assert product.engine_api("GET", f"/rules/{ref}").json()["enabled"] is True


MATCH_TABLES = (
    "poundcake_alerts",
    "poundcake_alert_deliveries",
    "poundcake_st2_execution_extensions",
    "execution_db",
    "liveaction_db",
    "trigger_instance_db",
    "rule_enforcement_db",
)


def test_cab_match_renders_steps_and_stores_nothing(operator: Browser, product: Product) -> None:
    hostile = "db-1; touch /tmp/pwned-$(id -u) {{ 7 * 7 }} '\"`"
    document = payload("UiApiDiskFull", {"instance": hostile})
    document["alerts"].append(payload("UiApiDiskFull", {"severity": "info"})["alerts"][0])
    document["alerts"].append(payload("SomethingElse")["alerts"][0])
    before = {table: count(product, table) for table in MATCH_TABLES}

    response = operator.request("POST", "/ui/api/cabs/match", json=document)
    assert response.status_code == 200, response.text
    critical, info, unrelated = response.json()["alerts"]
    assert critical["labels"]["instance"] == hostile and critical["status"] == "firing"
    [matched] = critical["matches"]
    assert matched["cab"] == CAB and matched["rule_ref"] == f"poundcake_cabs.{CAB}"
    assert matched["error"] is None
    clean, report = matched["steps"]
    assert clean["order"] == 1 and clean["action"] == "core.local"
    assert clean["parameters"]["cmd"] == f"echo cleaning {shlex.quote(hostile)}"
    assert report["parameters"]["message"] == f"done for match-test on {hostile}"
    assert info["matches"] == [] and unrelated["matches"] == []

    after = {table: count(product, table) for table in MATCH_TABLES}
    assert after == before
    assert json.dumps(before)  # the counts were read


def test_cab_match_refuses_a_malformed_payload(operator: Browser) -> None:
    for body, problem in (
        (b"not json", "not JSON"),
        (b'{"version": "4"}', "alerts"),
        (json.dumps({"version": "4", "alerts": [{"labels": "x"}]}).encode(), "alerts[0]"),
    ):
        response = operator.request(
            "POST", "/ui/api/cabs/match", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert problem in response.json()["detail"]


# --- live events ------------------------------------------------------------------------------


def test_the_event_stream_relays_executions(operator: Browser, product: Product) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    opened = threading.Event()
    stop = threading.Event()

    def listen() -> None:
        try:
            follow()
        except httpx.HTTPError:
            return  # the product stops at the end of the module

    def follow() -> None:
        headers = {"Cookie": f"poundcake_session={operator.cookie}"}
        with httpx.stream(
            "GET", f"{product.api_url}/ui/api/events", headers=headers, timeout=60
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            opened.set()
            name = "message"
            for line in response.iter_lines():
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    events.append((name, json.loads(line[5:])))
                if stop.is_set():
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert opened.wait(30)
    execution_id, found = _run_while_streaming(product, events)
    assert found[0]["action"] == "core.local"
    assert set(found[0]) == {"id", "action", "status", "parent", "request_id", "alert_id"}
    assert found[0]["parent"] is None
    eventually(
        lambda: any(d["status"] == "succeeded" for n, d in events if d.get("id") == execution_id),
        "the succeeded event",
    )
    deliver(product, payload(f"UiApiLive{uuid.uuid4().hex[:6]}"))
    alert_events = eventually(
        lambda: [data for name, data in events if name == "alert"], "an alert event"
    )
    assert {"id", "name", "state", "status"} <= set(alert_events[0])
    assert thread.is_alive()
    assert operator.request("DELETE", "/ui/session").status_code == 204
    thread.join(timeout=60)
    assert not thread.is_alive(), "the stream outlived its session"
    stop.set()
    unauthenticated = httpx.get(f"{product.api_url}/ui/api/events", timeout=30)
    assert unauthenticated.status_code == 401


def _run_while_streaming(
    product: Product, events: list[tuple[str, dict[str, Any]]]
) -> tuple[str, list[dict[str, Any]]]:
    """Start executions until one shows up on the stream (the relay reaches the engine's stream
    just after the browser's stream opens, so the first may run before it is followed)."""
    for _attempt in range(10):
        execution_id = run_action(product, {"cmd": "echo live"})
        try:
            found = eventually(
                lambda wanted=execution_id: [
                    d for n, d in events if n == "execution" and d["id"] == wanted
                ],
                "an execution event",
                timeout=10,
            )
        except AssertionError:
            continue
        return execution_id, found
    raise AssertionError("no execution event arrived on the UI's stream")


def test_webhook_token_is_not_a_ui_login(browser: Browser) -> None:
    browser.cookie = TOKEN
    assert browser.request("GET", "/ui/api/dashboard").status_code == 401


def test_failed_logins_are_throttled(browser: Browser) -> None:
    """Last in the module: it blocks logins from this address for the rest of the window."""
    name = "guesser-" + uuid.uuid4().hex[:6]
    answers = [browser.log_in(name, f"guess-{attempt}").status_code for attempt in range(11)]
    # Earlier tests' failures from this address count too: some 401s, then only 429s.
    refused = answers.index(429)
    assert refused > 0 and answers[:refused] == [401] * refused
    assert answers[refused:] == [429] * (len(answers) - refused)
    blocked = browser.log_in(name, "guess-12")
    assert blocked.json() == {"detail": "Too many failed logins. Try again later."}
    assert browser.log_in().status_code == 429
