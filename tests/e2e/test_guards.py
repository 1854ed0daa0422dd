"""End to end: the admission guards on the whole product (real Alertmanager, MariaDB, Redis, the
engine), with two poundcake-api and two poundcake-worker processes at once; approvals answered
through the CLI, the UI in Chromium, the API and ``st2 inquiry respond`` (the engine's inquiry).

Each CAB exercises one guard; what runs is counted twice, from the decision log and from the
engine's workflow executions, so a guard that records a hold but lets the engine run anyway fails.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from poundcake.config import Settings, load_poundcake_config
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.retry import in_transaction
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.remediation.alerts.lifecycle import lock_alert
from poundcake.remediation.guards.service import Admission, GuardLimits, admit
from tests import factories
from tests.e2e.stack import BIN, TOKEN, Product, eventually, running_product
from tests.e2e.test_alertmanager_remediation import webhook_payload, workflow_executions
from tests.e2e.web_browser import (
    USERNAME,
    Served,
    browser_page,
    chromium,
    create_login,
    log_in_and_wait,
)
from tests.integration.support.st2cli import free_port, logged_in, output

FIX = {"action": "core.local", "parameters": {"cmd": "echo fix {{ alert.labels.instance }}"}}
SLOW = {"action": "core.local", "parameters": {"cmd": "sleep 2; echo {{ alert.labels.instance }}"}}
CABS: dict[str, dict[str, Any]] = {
    "blast": {
        "name": "blast",
        "alert_name_pattern": "^GuardStorm$",
        "target": "{{ alert.labels.instance }}",
        "blast_radius": {"group": "{{ alert.labels.cluster }}", "max_share": 0.1, "size": 200},
        "steps": [FIX],
    },
    "flapper": {
        "name": "flapper",
        "alert_name_pattern": "^GuardFlap$",
        "flap": {"max_episodes": 3, "window": "5m"},
        "steps": [FIX],
    },
    "budgeted": {
        "name": "budgeted",
        "alert_name_pattern": "^GuardBudget$",
        "max_runs": 5,
        "budget_window": "1h",
        "steps": [FIX],
    },
    "cooling": {
        "name": "cooling",
        "alert_name_pattern": "^GuardCooldown",
        "group": "{{ alert.labels.instance }}",
        "cooldown": "1h",
        "steps": [FIX],
    },
    "lock_a": {
        "name": "lock_a",
        "alert_name_pattern": "^GuardLockA$",
        "target": "{{ alert.labels.instance }}",
        "steps": [SLOW],
    },
    "lock_b": {
        "name": "lock_b",
        "alert_name_pattern": "^GuardLockB$",
        "target": "{{ alert.labels.instance }}",
        "steps": [SLOW],
    },
    "stormy": {
        "name": "stormy",
        "alert_name_pattern": "^GuardGlobalStorm$",
        "steps": [FIX],
    },
    "impatient": {
        "name": "impatient",
        "alert_name_pattern": "^GuardImpatient$",
        "target": "{{ alert.labels.instance }}",
        "target_wait": "1s",
        "steps": [{"action": "core.local", "parameters": {"cmd": "sleep 8; echo slow"}}],
    },
    "shadowed": {
        "name": "shadowed",
        "alert_name_pattern": "^GuardShadow$",
        "mode": "shadow",
        "steps": [FIX],
    },
    # Approvals.
    "gated": {
        "name": "gated",
        "alert_name_pattern": "^ApprovalGated$",
        "approval": "required",
        "target": "{{ alert.labels.instance }}",
        "steps": [FIX],
    },
    "brief": {
        "name": "brief",
        "alert_name_pattern": "^ApprovalBrief$",
        "approval": "required",
        "approval_ttl": "3s",
        "steps": [FIX],
    },
    "critical_only": {
        "name": "critical_only",
        "alert_name_pattern": "^ApprovalCritical$",
        "approval": {"severity": "critical"},
        "steps": [FIX],
    },
}


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    with running_product(tmp_path_factory.mktemp("guards"), CABS) as running:
        # A second API and a second worker: the guards must hold across processes.
        second_api = free_port()
        running.start(
            "poundcake-api-2",
            [str(BIN / "poundcake-api")],
            env={**running.env, "POUNDCAKE_PORT": str(second_api)},
        )
        running.start("poundcake-worker-2", [str(BIN / "poundcake-worker")])
        running.env["SECOND_API_URL"] = f"http://127.0.0.1:{second_api}"
        yield running


@pytest.fixture(scope="module")
def ui_page(product: Product) -> Iterator[Page]:
    """Chromium logged in to the UI, shared by the module's UI tests (one browser start)."""
    create_login(product)
    with chromium() as browser, browser_page(browser, Served()) as (_context, page):
        log_in_and_wait(page, product)
        yield page


@pytest.fixture(scope="module")
def database(product: Product) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"mysql+pymysql://root@127.0.0.1:3306/{product.database}")
    yield engine
    engine.dispose()


def decisions(database: sa.Engine, cab: str) -> list[dict[str, Any]]:
    with database.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT alert_id, request_id, decision, reason, detail, target, rendered, "
                "created_at FROM poundcake_decisions WHERE cab_name = :cab ORDER BY id"
            ),
            {"cab": cab},
        )
        return [dict(row._mapping) for row in rows]


def decided(database: sa.Engine, cab: str, episodes: int) -> list[dict[str, Any]]:
    """The final decisions of ``cab`` for the alerts it matched, once there are ``episodes``."""

    def check() -> list[dict[str, Any]] | None:
        final = [
            d for d in decisions(database, cab) if d["decision"] not in ("waiting", "not_matched")
        ]
        return final if len({d["alert_id"] for d in final}) >= episodes else None

    found: list[dict[str, Any]] = eventually(check, f"{episodes} decisions for {cab}", 240)
    return found


def post(product: Product, payload: dict[str, Any], *, second: bool = False) -> None:
    """Send a notification to the first poundcake-api, or to the second."""
    url = product.env["SECOND_API_URL"] if second else product.api_url
    response = httpx.post(
        f"{url}/api/v1/webhook",
        json=payload,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 202, response.text


def alert_payload(name: str, instance: str, *, starts_at: datetime, fingerprint: str) -> Any:
    payload = webhook_payload(name, fingerprint=fingerprint, starts_at=starts_at)
    for labels in (payload["commonLabels"], payload["alerts"][0]["labels"]):
        labels["instance"] = instance
    return payload


def finished_runs(product: Product, cab: str, count: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        found = workflow_executions(product, cab)
        done = [e for e in found if e["status"] in ("succeeded", "failed")]
        return found if len(done) >= count else None

    runs: list[dict[str, Any]] = eventually(check, f"{count} runs of {cab}", 240)
    return runs


def metric(product: Product, name: str, **labels: str) -> float | None:
    text = product.api("GET", "/metrics").text
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        found = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
        if found and found.group(1) == name:
            have = ",".join(sorted(found.group(2).split(",")))
            if have == wanted:
                return float(found.group(3))
    return None


def test_a_storm_over_one_cluster_runs_at_most_its_blast_radius(
    product: Product, database: sa.Engine
) -> None:
    alerts = [
        {
            "labels": {"alertname": "GuardStorm", "cluster": "c1", "instance": f"node-{n:03d}"},
            "annotations": {"summary": "storm"},
        }
        for n in range(200)
    ]
    response = httpx.post(f"{product.alertmanager_url}/api/v2/alerts", json=alerts, timeout=60)
    assert response.status_code == 200, response.text
    final = decided(database, "blast", 200)
    runs = [d for d in final if d["decision"] == "run"]
    held = [d for d in final if d["decision"] == "held"]
    assert len(runs) == 20, [d["detail"] for d in final[:30]]
    assert len(held) == 180
    assert {d["reason"] for d in held} == {"blast_radius"}
    assert "max_share 0.1 allows 20" in held[0]["detail"]
    executions = finished_runs(product, "blast", 20)
    assert len(executions) == 20
    assert metric(product, "poundcake_breaker_open", scope="blast:blast:c1") == 1.0
    assert (
        metric(
            product,
            "poundcake_guard_decisions_total",
            cab="blast",
            decision="held",
            reason="blast_radius",
        )
        == 180.0
    )
    trail = product.api("GET", f"/api/v1/requests/{held[0]['request_id']}").json()["trail"]
    [delivered] = [a for a in trail["alerts"] if a["id"] == held[0]["alert_id"]]
    [decision] = [d for d in delivered["decisions"] if d["cab"] == "blast"]
    assert (decision["decision"], decision["reason"]) == ("held", "blast_radius")
    assert delivered["state"] == "held"
    status = product.poundcake("breaker", "status", "--json")
    assert status.returncode == 0, status.stderr
    assert '"scope": "blast:blast:c1"' in status.stdout and '"state": "open"' in status.stdout
    reset = product.poundcake("breaker", "reset", "blast:blast:c1")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert metric(product, "poundcake_breaker_open", scope="blast:blast:c1") == 0.0


def test_a_flapping_alert_runs_only_until_it_is_flapping(
    product: Product, database: sa.Engine
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=4)
    for episode in range(10):
        payload = alert_payload(
            "GuardFlap",
            "flappy-1",
            starts_at=start + timedelta(seconds=20 * episode),
            fingerprint="guardflap0000001",
        )
        post(product, payload, second=episode % 2 == 1)
    final = decided(database, "flapper", 10)
    assert [d["decision"] for d in final].count("run") == 3
    held = [d for d in final if d["decision"] == "held"]
    assert len(held) == 7 and {d["reason"] for d in held} == {"flap"}
    assert "flapping" in held[0]["detail"]
    assert len(finished_runs(product, "flapper", 3)) == 3
    shown = product.poundcake("alerts", "show", held[0]["alert_id"])
    assert shown.returncode == 0, shown.stderr
    assert "flapper: held (flap)" in shown.stdout
    assert "held by the guards" in shown.stdout


def test_a_budget_holds_across_two_apis_and_two_workers(
    product: Product, database: sa.Engine
) -> None:
    now = datetime.now(UTC)
    payloads = [
        alert_payload(
            "GuardBudget", f"budget-{n}", starts_at=now, fingerprint=f"guardbudget{n:05d}"
        )
        for n in range(30)
    ]

    def send(part: int) -> None:
        for payload in payloads[part::2]:
            post(product, payload, second=part == 1)

    senders = [threading.Thread(target=send, args=(part,)) for part in range(2)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    final = decided(database, "budgeted", 30)
    assert [d["decision"] for d in final].count("run") == 5
    held = [d for d in final if d["decision"] == "held"]
    assert len(held) == 25 and {d["reason"] for d in held} == {"budget"}
    assert len(finished_runs(product, "budgeted", 5)) == 5


def test_a_cooldown_holds_the_same_group_only(product: Product, database: sa.Engine) -> None:
    now = datetime.now(UTC)
    for n, instance in enumerate(("cool-1", "cool-1", "cool-2")):
        payload = alert_payload(
            f"GuardCooldown{n}", instance, starts_at=now, fingerprint=f"guardcooldown{n:03d}"
        )
        post(product, payload)
        decided(database, "cooling", n + 1)
    final = decided(database, "cooling", 3)
    by_target = [(d["decision"], d["reason"]) for d in final]
    assert by_target == [("run", "admitted"), ("held", "cooldown"), ("run", "admitted")]


def test_two_cabs_on_one_target_never_overlap(product: Product, database: sa.Engine) -> None:
    now = datetime.now(UTC)
    for name in ("GuardLockA", "GuardLockB", "GuardLockA"):
        payload = alert_payload(
            name, "shared-1", starts_at=now, fingerprint=f"guardlock{uuid.uuid4().hex[:7]}"
        )
        post(product, payload)
    runs = [*finished_runs(product, "lock_a", 2), *finished_runs(product, "lock_b", 1)]
    assert len(runs) == 3
    spans = sorted(
        (
            datetime.fromisoformat(run["start_timestamp"]),
            datetime.fromisoformat(run["end_timestamp"]),
        )
        for run in runs
    )
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert first_end <= second_start, spans
    waits = [d for d in decisions(database, "lock_b") if d["decision"] == "waiting"]
    waits += [d for d in decisions(database, "lock_a") if d["decision"] == "waiting"]
    assert waits and "is locked by CAB" in waits[0]["detail"]


def test_shadow_mode_records_what_would_run_and_runs_nothing(
    product: Product, database: sa.Engine
) -> None:
    payload = alert_payload(
        "GuardShadow", "shadow-host; id", starts_at=datetime.now(UTC), fingerprint="guardshadow001"
    )
    post(product, payload)
    [decision] = decided(database, "shadowed", 1)
    assert decision["decision"] == "shadow"
    rendered = decision["rendered"]
    if isinstance(rendered, str):
        rendered = json.loads(rendered)
    [step] = rendered
    assert step["parameters"]["cmd"] == "echo fix 'shadow-host; id'"
    alert = product.alert_in_state("GuardShadow", "held")
    assert workflow_executions(product, "shadowed") == []
    shown = product.poundcake("alerts", "show", alert["id"])
    assert "would run step 1 core.local" in shown.stdout


def test_the_ui_shows_decisions_breakers_and_guard_fields(product: Product, ui_page: Page) -> None:
    page = ui_page
    alert = product.alert_in_state("GuardShadow", "held")
    page.goto(f"{product.api_url}/#/")
    breakers = page.get_by_role("table", name="Breakers")
    expect(breakers).to_contain_text("blast:blast:c1")
    expect(page.get_by_role("table", name="Recent guard decisions")).to_contain_text("shadow")
    page.goto(f"{product.api_url}/#/alerts/{alert['id']}")
    decisions_table = page.get_by_role("table", name="Guard decisions")
    expect(decisions_table).to_contain_text("shadowed")
    expect(decisions_table).to_contain_text("echo fix 'shadow-host; id'")
    page.goto(f"{product.api_url}/#/cabs")
    expect(page.get_by_text("lock {{ alert.labels.instance }}").first).to_be_visible()
    gated = page.get_by_role("article", name="gated")
    expect(gated).to_contain_text("approval required (ttl 1h)")
    expect(gated).to_contain_text("required; expires after 1h")


def test_the_global_storm_breaker_holds_what_is_over_the_line(product: Product) -> None:
    """The guard step in this process with a global limit of 5 new alerts a minute; the alerts
    are stamped a day ahead so that only they fall in their window."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        DATABASE_URL=f"mysql+pymysql://root@127.0.0.1:3306/{product.database}",
        ST2_TABLE_PREFIX="",
    )
    db_engine = make_poundcake_engine(load_poundcake_config(settings), pool_size=2)
    sessions = make_session_factory(db_engine)
    limits = GuardLimits(storm_max_alerts=5, storm_window_seconds=60)
    later = datetime.now(UTC) + timedelta(days=1)
    answers = []
    try:
        for n in range(8):
            identifier = f"{n:02d}" + uuid.uuid4().hex[:22]
            with unit_of_work(sessions) as session:
                session.add(
                    factories.alert(
                        id=identifier,
                        fingerprint=uuid.uuid4().hex[:16],
                        alert_name="GuardGlobalStorm",
                        labels={"alertname": "GuardGlobalStorm", "instance": f"storm-{n}"},
                        created_at=later + timedelta(milliseconds=n),
                        state="received",
                    )
                )

            def decide_one(session: Session, identifier: str = identifier) -> Admission:
                alert = lock_alert(session, identifier)
                assert alert is not None
                payload = {"alertname": "GuardGlobalStorm", "status": "firing", "labels": {}}
                return admit(session, alert, payload, request_id=None, limits=limits)

            answers.append(in_transaction(sessions, decide_one))
    finally:
        db_engine.dispose()
    stormy = [next(d for d in answer.decisions if d.cab_name == "stormy") for answer in answers]
    assert [d.decision for d in stormy] == ["run"] * 5 + ["held"] * 3
    assert {d.reason for d in stormy[5:]} == {"breaker"}
    assert "6 new alerts in 60 s (limit 5)" in (stormy[5].detail or "")
    assert metric(product, "poundcake_breaker_open", scope="global") == 1.0


def test_the_guard_fields_are_in_the_cab_api_and_cli(product: Product) -> None:
    answer = product.api("GET", "/api/v1/cabs/blast")
    assert answer.status_code == 200, answer.text
    cab = answer.json()["cab"]
    assert cab["target"] == "{{ alert.labels.instance }}"
    assert cab["blast_radius"]["max_share"] == 0.1 and cab["blast_radius"]["size"] == 200
    assert (cab["mode"], cab["max_runs"], cab["budget_window"]) == ("run", 1000, "1h")
    refused = product.api(
        "PUT",
        "/api/v1/cabs/badguard",
        json={**CABS["flapper"], "name": "badguard", "cooldown": "soon"},
    )
    assert refused.status_code == 400, refused.text
    assert "cooldown: must be a duration" in refused.text
    listed = product.poundcake("cabs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [flapper] = [c for c in json.loads(listed.stdout) if c["name"] == "flapper"]
    assert flapper["flap"] == {"max_episodes": 3, "window": "5m"}
    assert (flapper["approval"], flapper["approval_ttl"]) == ("none", "1h")
    [brief] = [c for c in json.loads(listed.stdout) if c["name"] == "brief"]
    assert (brief["approval"], brief["approval_ttl"]) == ("required", 3)
    critical = product.api("GET", "/api/v1/cabs/critical_only").json()["cab"]
    assert critical["approval"] == {"severity": ["critical"]}


def test_an_alert_waiting_for_a_locked_target_gives_up_after_target_wait(
    product: Product, database: sa.Engine
) -> None:
    now = datetime.now(UTC)
    for n in range(2):
        post(
            product,
            alert_payload(
                "GuardImpatient", "busy-1", starts_at=now, fingerprint=f"guardimpatient{n:02d}"
            ),
        )
        decided(database, "impatient", 1)
    final = decided(database, "impatient", 2)
    assert [d["decision"] for d in final] == ["run", "held"]
    assert final[1]["reason"] == "lock" and "gave up after waiting" in final[1]["detail"]
    waits = [d for d in decisions(database, "impatient") if d["decision"] == "waiting"]
    assert waits and waits[0]["alert_id"] == final[1]["alert_id"]


# --- approvals ---------------------------------------------------------------------------


def fire(product: Product, name: str, instance: str, severity: str = "warning") -> str:
    """Send one new alert episode to poundcake-api; its fingerprint."""
    fingerprint = uuid.uuid4().hex[:16]
    payload = webhook_payload(name, fingerprint=fingerprint, starts_at=datetime.now(UTC))
    for labels in (payload["commonLabels"], payload["alerts"][0]["labels"]):
        labels.update(instance=instance, severity=severity)
    response = product.api("POST", "/api/v1/webhook", json=payload)
    assert response.status_code == 202, response.text
    return fingerprint


def asked(product: Product, cab: str, instance: str) -> dict[str, Any]:
    """The approval of ``cab`` for the alert on ``instance``, once its inquiry is made."""

    def check() -> dict[str, Any] | None:
        response = product.api("GET", "/api/v1/approvals", params={"state": "pending"})
        assert response.status_code == 200, response.text
        for item in response.json()["approvals"]:
            labels = item["alert"]["labels"]
            if item["cab"] == cab and labels.get("instance") == instance and item["inquiry_id"]:
                return dict(item)
        return None

    found: dict[str, Any] = eventually(check, f"an asked approval of {cab} on {instance}", 60)
    eventually(
        lambda: inquiry_status(product, found["inquiry_id"]) == "pending",
        f"inquiry {found['inquiry_id']} pending",
        60,
    )
    return found


def alert_decisions(database: sa.Engine, alert_id: str) -> list[tuple[str, str, str]]:
    with database.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT decision, reason, detail FROM poundcake_decisions "
                "WHERE alert_id = :alert ORDER BY id"
            ),
            {"alert": alert_id},
        )
        return [(row.decision, row.reason, row.detail or "") for row in rows]


def runs_on(product: Product, cab: str, instance: str) -> list[dict[str, Any]]:
    """The CAB's workflow executions for the alert on ``instance``."""
    return [
        execution
        for execution in workflow_executions(product, cab)
        if execution["parameters"]["alert"]["labels"].get("instance") == instance
    ]


def finished_run_on(product: Product, cab: str, instance: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        done = [e for e in runs_on(product, cab, instance) if e["status"] == "succeeded"]
        return done[0] if done else None

    run: dict[str, Any] = eventually(check, f"a run of {cab} on {instance}", 90)
    return run


def alert_state(product: Product, alert_id: str, *states: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        alert = product.api("GET", f"/api/v1/alerts/{alert_id}").json()["alert"]
        return dict(alert) if alert["state"] in states else None

    found: dict[str, Any] = eventually(check, f"alert {alert_id} in {states}", 60)
    return found


def inquiry_status(product: Product, inquiry_id: str) -> str:
    response = product.engine_api("GET", f"/executions/{inquiry_id}")
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def test_an_approval_gated_cab_runs_only_once_approved_through_the_cli(
    product: Product, database: sa.Engine
) -> None:
    fire(product, "ApprovalGated", "gated-cli")
    approval = asked(product, "gated", "gated-cli")
    alert_id = approval["alert_id"]
    [(decision, reason, detail)] = alert_decisions(database, alert_id)
    assert (decision, reason) == ("waiting", "approval")
    assert f"approval {approval['id']} asked (required)" in detail
    pending = product.engine_api("GET", "/inquiries").json()
    assert approval["inquiry_id"] in {item["id"] for item in pending}
    listed = product.poundcake("approvals", "list", "--state", "pending")
    assert listed.returncode == 0, listed.stderr
    assert "gated" in listed.stdout and "pending" in listed.stdout
    assert runs_on(product, "gated", "gated-cli") == []
    # Another run holds the target: approved, the CAB still waits for the lock.
    with database.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO poundcake_target_locks VALUES "
                "('gated-cli', :other, 'other_cab', UTC_TIMESTAMP(6), "
                "UTC_TIMESTAMP(6) + INTERVAL 10 MINUTE)"
            ),
            {"other": "f" * 24},
        )
    approved = product.poundcake("approvals", "approve", str(approval["id"]), "--by", "alice")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert f"Approval {approval['id']} approved by alice" in approved.stdout
    eventually(
        lambda: any(d[:2] == ("waiting", "lock") for d in alert_decisions(database, alert_id)),
        "the approved CAB waiting for its target",
        60,
    )
    assert runs_on(product, "gated", "gated-cli") == []
    with database.begin() as connection:
        connection.execute(sa.text("DELETE FROM poundcake_target_locks WHERE target = 'gated-cli'"))
    finished_run_on(product, "gated", "gated-cli")
    ran = [d for d in alert_decisions(database, alert_id) if d[0] == "run"]
    assert ran and f"approval {approval['id']} approved by alice via cli" in ran[0][2]
    # Answered once: a second answer, through the other API process or the engine, is refused.
    again = httpx.post(
        f"{product.env['SECOND_API_URL']}/api/v1/approvals/{approval['id']}/deny",
        json={"by": "bob"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert again.status_code == 409, again.text
    assert "approved by alice via cli" in again.json()["error"]
    refused = product.engine_api(
        "PUT",
        f"/inquiries/{approval['inquiry_id']}",
        json={"id": approval["inquiry_id"], "response": {"approved": False}},
    )
    assert refused.status_code == 400 and "already been responded to" in refused.text
    trail = product.api("GET", f"/api/v1/requests/{approval['request_id']}").json()["trail"]
    [delivered] = [a for a in trail["alerts"] if a["id"] == alert_id]
    shown = [(d["decision"], d["reason"]) for d in delivered["decisions"]]
    assert ("waiting", "approval") in shown and ("run", "admitted") in shown


def test_an_approval_through_the_ui_runs_the_cab(
    product: Product, database: sa.Engine, ui_page: Page
) -> None:
    page = ui_page
    fire(product, "ApprovalGated", "gated-ui")
    approval = asked(product, "gated", "gated-ui")
    page.goto(f"{product.api_url}/#/approvals")
    pending = page.get_by_role("region", name="Pending approvals")
    expect(pending).to_contain_text("gated-ui")
    assert runs_on(product, "gated", "gated-ui") == []
    page.get_by_role("button", name=f"Approve approval {approval['id']} (gated)").click()
    expect(page.locator("p.notice")).to_have_text(
        f"Approval {approval['id']} is approved by {USERNAME}."
    )
    expect(page.get_by_role("region", name="Answered approvals")).to_contain_text(
        f"{USERNAME} (ui)"
    )
    finished_run_on(product, "gated", "gated-ui")
    ran = [d for d in alert_decisions(database, approval["alert_id"]) if d[0] == "run"]
    assert ran and f"approved by {USERNAME} via ui" in ran[0][2]


def test_denied_through_the_api_or_st2_never_runs(product: Product, database: sa.Engine) -> None:
    fire(product, "ApprovalGated", "gated-api")
    fire(product, "ApprovalGated", "gated-st2")
    by_api = asked(product, "gated", "gated-api")
    by_st2 = asked(product, "gated", "gated-st2")
    denied = product.api(
        "POST",
        f"/api/v1/approvals/{by_api['id']}/deny",
        json={"by": "bob", "comment": "not during the freeze"},
    )
    assert denied.status_code == 200, denied.text
    assert denied.json()["approval"]["state"] == "denied"
    st2 = logged_in(product.engine, product.directory / "st2-home")
    response = json.dumps({"approved": False, "by": "carol"})
    answered = st2("inquiry", "respond", by_st2["inquiry_id"], "-r", response)
    assert answered.returncode == 0, output(answered)
    for approval, who in ((by_api, "bob via api"), (by_st2, "carol via st2")):
        alert = alert_state(product, approval["alert_id"], "held")
        assert "approval" in alert["state_reason"]
        held = [d for d in alert_decisions(database, approval["alert_id"]) if d[0] == "held"]
        assert held and held[0][1] == "approval" and f"denied by {who}" in held[0][2]
    # Both ways agree: the engine refuses st2 for the API's answer, the API refuses st2's.
    late = product.engine_api(
        "PUT",
        f"/inquiries/{by_api['inquiry_id']}",
        json={"id": by_api["inquiry_id"], "response": {"approved": True}},
    )
    assert late.status_code == 400 and "already been responded to" in late.text
    again = product.api("POST", f"/api/v1/approvals/{by_st2['id']}/approve")
    assert again.status_code == 409 and "denied by carol via st2" in again.text
    assert runs_on(product, "gated", "gated-api") == []
    assert runs_on(product, "gated", "gated-st2") == []


def test_an_unanswered_approval_expires_as_denied(product: Product, database: sa.Engine) -> None:
    fire(product, "ApprovalBrief", "brief-1")
    approval = asked(product, "brief", "brief-1")
    alert = alert_state(product, approval["alert_id"], "held")
    assert "expired unanswered" in alert["state_reason"]
    shown = product.api("GET", f"/api/v1/approvals/{approval['id']}").json()["approval"]
    assert (shown["state"], shown["answered_by"]) == ("expired", "ttl")
    eventually(
        lambda: inquiry_status(product, approval["inquiry_id"]) == "canceled",
        "the expired approval's inquiry canceled",
        30,
    )
    late = product.api("POST", f"/api/v1/approvals/{approval['id']}/approve")
    assert late.status_code == 409 and "expired" in late.text
    assert workflow_executions(product, "brief") == []


def test_a_condition_asks_only_for_the_alerts_it_names(product: Product) -> None:
    fire(product, "ApprovalCritical", "warn-1", severity="warning")
    fire(product, "ApprovalCritical", "crit-1", severity="critical")
    finished_run_on(product, "critical_only", "warn-1")
    asked(product, "critical_only", "crit-1")
    assert runs_on(product, "critical_only", "crit-1") == []
