"""End to end: a CAB's run safety through a real Alertmanager, engine, MariaDB, Redis and
RabbitMQ: a silence covers the alert while its CAB runs and is expired after (also when the
worker that made it was killed), a fix is verified or not by whether the alert resolved, and
an action runner killed mid-step resumes an idempotent CAB's run without doubling a step that
was not abandoned."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.stack import Product, alertmanager_now, eventually, running_product
from tests.faults.processes import kill, start

# The action runner's lease (30 s) must expire before its work is abandoned.
ABANDON_WITHIN = 120


def cabs(effects: Path) -> dict[str, dict[str, Any]]:
    """The CABs under test; steps append ``<step> <instance>`` to ``effects``."""

    def effect(step: str, then: str = "") -> dict[str, Any]:
        command = f"echo {step} {{{{ alert.labels.instance }}}} >> {effects}{then}"
        return {"name": step, "action": "core.local", "parameters": {"cmd": command}}

    slow = {**effect("slow", "; sleep 20"), "timeout_seconds": 120}
    return {
        "silenced": {
            "name": "silenced",
            "alert_name_pattern": "^RSSilenced$",
            "silence": True,
            "steps": [{**effect("hold", "; sleep 8"), "timeout_seconds": 60}],
        },
        "verified": {
            "name": "verified",
            "alert_name_pattern": "^RSVerified$",
            "verify_within": "2m",
            "steps": [effect("fix")],
        },
        "unverified": {
            "name": "unverified",
            "alert_name_pattern": "^RSUnverified$",
            "verify_within": 3,
            "on_unverified": "escalate",
            "steps": [effect("fix")],
        },
        "then_other": {
            "name": "then_other",
            "alert_name_pattern": "^RSThenOther$",
            "verify_within": 3,
            "on_unverified": "second_try",
            "steps": [effect("fix")],
        },
        "second_try": {
            "name": "second_try",
            "alert_name_pattern": "^RSNeverFires$",
            "steps": [effect("second")],
        },
        "idempotent": {
            "name": "idempotent",
            "alert_name_pattern": "^RSIdempotent$",
            "idempotent": True,
            "steps": [effect("first"), slow],
        },
        "once_only": {
            "name": "once_only",
            "alert_name_pattern": "^RSOnceOnly$",
            "steps": [effect("first"), slow],
        },
    }


@pytest.fixture(scope="module")
def effects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("effects") / "effects.log"


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory, effects: Path) -> Iterator[Product]:
    with running_product(tmp_path_factory.mktemp("run-safety"), cabs(effects)) as running:
        yield running


# A label that looks like a template: it must stay data wherever the alert goes.
NOTE = "{{ 6 * 7 }}"


def labels(name: str) -> dict[str, str]:
    instance = f"rs-{uuid.uuid4().hex[:10]}"
    return {"alertname": name, "severity": "warning", "instance": instance, "note": NOTE}


def silence(product: Product, silence_id: str) -> dict[str, Any]:
    response = httpx.get(f"{product.alertmanager_url}/api/v2/silence/{silence_id}", timeout=10)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def side_effects(effects: Path) -> Counter[str]:
    lines = effects.read_text().splitlines() if effects.exists() else []
    return Counter(line.strip() for line in lines if line.strip())


def test_run_safety_fields_are_shown_with_their_defaults(product: Product) -> None:
    response = product.api("GET", "/api/v1/cabs/idempotent")
    assert response.status_code == 200, response.text
    cab = response.json()["cab"]
    assert cab["idempotent"] is True and cab["retry"] == {"on_abandoned": 2}
    assert cab["silence"] is False and cab["verify_within"] is None
    verified = product.api("GET", "/api/v1/cabs/verified").json()["cab"]
    assert verified["verify_within"] == 120 and verified["on_unverified"] is None
    listed = product.poundcake("cabs", "list")
    assert listed.returncode == 0, listed.stderr
    assert "retry abandoned 2" in listed.stdout and "silence" in listed.stdout

    document = {
        "name": "checked",
        "alert_name_pattern": "^RSChecked$",
        "verify_within": 60,
        "steps": [{"action": "core.local", "parameters": {"cmd": "true"}}],
    }
    known = product.api(
        "POST", "/api/v1/cabs/validate", json={**document, "on_unverified": "second_try"}
    )
    assert known.status_code == 200, known.text
    unknown = product.api(
        "POST", "/api/v1/cabs/validate", json={**document, "on_unverified": "nowhere"}
    )
    assert unknown.status_code == 400
    assert unknown.json()["problems"] == ['checked: on_unverified: no CAB named "nowhere"']
    refused = product.api(
        "PUT", "/api/v1/cabs/checked", json={**document, "retry": {"on_abandoned": "twice"}}
    )
    assert refused.status_code == 400
    assert "retry.on_abandoned: must be a whole number" in refused.json()["error"]


def _silenced_while_running(product: Product, instance: str) -> tuple[dict[str, Any], str]:
    """Wait for the running episode's silence in Alertmanager; the episode and silence id."""
    running = product.episode_where(
        instance,
        "a silence while the CAB runs",
        lambda found: (
            found["state"] == "remediating" and (found["silence"] or {}).get("state") == "active"
        ),
    )
    silence_id = running["silence"]["silence_id"]
    made = silence(product, silence_id)
    assert made["status"]["state"] == "active"
    assert made["createdBy"] == "poundcake"
    assert running["id"] in made["comment"]
    matched = {m["name"]: m["value"] for m in made["matchers"]}
    assert matched == running["labels"]
    return running, silence_id


def test_a_silence_covers_the_alert_while_its_cab_runs_and_is_expired_after(
    product: Product,
) -> None:
    fired = labels("RSSilenced")
    product.fire_through_alertmanager(fired)
    running, silence_id = _silenced_while_running(product, fired["instance"])
    # Alertmanager itself holds the alert as silenced by it.
    alerts = httpx.get(
        f"{product.alertmanager_url}/api/v2/alerts",
        params={"filter": f'instance="{fired["instance"]}"'},
        timeout=10,
    ).json()
    assert [alert["status"]["silencedBy"] for alert in alerts] == [[silence_id]]

    done = product.episode_where(
        fired["instance"],
        "the silence expired after the run",
        lambda found: (found["silence"] or {}).get("state") == "expired",
    )
    assert done["state"] == "remediated", done
    assert silence(product, silence_id)["status"]["state"] == "expired"
    trail = product.api("GET", f"/api/v1/requests/{running['request_id']}").json()["trail"]
    assert trail["alerts"][0]["silence"]["silence_id"] == silence_id


def test_a_silence_is_expired_after_the_worker_that_made_it_was_killed(product: Product) -> None:
    fired = labels("RSSilenced")
    product.fire_through_alertmanager(fired)
    _, silence_id = _silenced_while_running(product, fired["instance"])

    kill(product, "poundcake-worker")
    start(product, "poundcake-worker")

    done = product.episode_where(
        fired["instance"],
        "the silence expired after the worker was killed",
        lambda found: (found["silence"] or {}).get("state") == "expired",
    )
    assert done["state"] == "remediated", done
    assert silence(product, silence_id)["status"]["state"] == "expired"


def test_an_alert_that_resolves_after_the_fix_is_verified(product: Product) -> None:
    fired = labels("RSVerified")
    product.fire_through_alertmanager(fired)
    pending = product.episode_where(
        fired["instance"],
        "the fix waiting to be verified",
        lambda found: found["verification"] == "pending",
    )
    assert pending["state"] == "remediated" and pending["verify_by"] is not None

    product.fire_through_alertmanager(fired, endsAt=alertmanager_now())
    verified = product.episode_where(
        fired["instance"],
        "the fix verified",
        lambda found: found["verification"] != "pending",
    )
    assert verified["verification"] == "verified", verified
    assert verified["state"] == "resolved"
    assert "resolved after the fix" in verified["verification_reason"]
    logged = [d for d in verified["decisions"] if d["reason"] == "verification"]
    assert [d["decision"] for d in logged] == ["verified"], verified["decisions"]
    shown = product.poundcake("alerts", "show", verified["id"])
    assert shown.returncode == 0, shown.stderr
    assert "verification: verified" in shown.stdout


def test_an_alert_that_keeps_firing_is_unverified_and_escalated(product: Product) -> None:
    fired = labels("RSUnverified")
    product.fire_through_alertmanager(fired)
    ended = product.episode_where(
        fired["instance"],
        "the verification to end",
        lambda found: found["verification"] not in (None, "pending"),
    )
    assert ended["verification"] == "unverified", ended
    logged = [d for d in ended["decisions"] if d["reason"] == "verification"]
    assert [d["decision"] for d in logged] == ["unverified"], ended["decisions"]
    assert ended["state"] == "remediated"
    assert "still had the alert firing" in ended["verification_reason"]
    assert ended["verification_reason"].endswith("; escalated")
    metrics = text_string_to_metric_families(product.api("GET", "/metrics").text)
    [family] = [found for found in metrics if found.name == "poundcake_verifications"]
    escalated = [
        sample.value
        for sample in family.samples
        if sample.labels == {"verification": "unverified", "escalated": "true"}
    ]
    assert escalated and escalated[0] >= 1, family.samples


def test_an_unverified_fix_runs_its_on_unverified_cab(product: Product, effects: Path) -> None:
    fired = labels("RSThenOther")
    product.fire_through_alertmanager(fired)
    ended = product.episode_where(
        fired["instance"],
        "the on_unverified CAB to start",
        lambda found: "on_unverified" in (found["verification_reason"] or ""),
    )
    assert ended["verification"] == "unverified"
    [linked] = [row for row in ended["execution_extensions"] if row["cab_name"] == "second_try"]
    execution_id = linked["st2_execution_id"]
    assert execution_id in ended["verification_reason"]

    def finished() -> str | None:
        status = product.engine_api("GET", f"/executions/{execution_id}").json()["status"]
        return status if status in ("succeeded", "failed") else None

    assert eventually(finished, "the on_unverified CAB to finish", 120) == "succeeded"
    started = product.engine_api("GET", f"/executions/{execution_id}").json()
    assert started["parameters"]["alert"]["labels"]["note"] == NOTE
    assert started["context"]["alert_id"] == ended["id"]
    assert side_effects(effects)[f"second {fired['instance']}"] == 1
    # Its extension row follows it to the end (the episode's trail shows how it went).
    product.episode_where(
        fired["instance"],
        "the on_unverified run's status recorded",
        lambda found: (
            [
                row["status"]
                for row in found["execution_extensions"]
                if row["st2_execution_id"] == execution_id
            ]
            == ["succeeded"]
        ),
    )


def test_an_abandoned_step_of_an_idempotent_cab_runs_again_and_no_other_step_does(
    product: Product, effects: Path
) -> None:
    """The action runner killed mid-step: the idempotent CAB's run is resumed (its abandoned
    step runs again, the step before it does not) and succeeds; the same CAB without
    ``idempotent`` ends ``failed`` naming why."""
    again, once = labels("RSIdempotent"), labels("RSOnceOnly")
    product.fire_through_alertmanager(again)
    product.fire_through_alertmanager(once)
    for fired in (again, once):
        eventually(
            lambda fired=fired: side_effects(effects)[f"slow {fired['instance']}"],
            "the slow step to start",
            120,
        )
    kill(product, "st2actionrunner")
    start(product, "st2actionrunner")

    resumed = product.episode_where(
        again["instance"],
        "the idempotent CAB's run to end",
        lambda found: found["state"] in ("remediated", "failed"),
    )
    assert resumed["state"] == "remediated", resumed
    assert resumed["abandoned_retries"] == 1
    workflow = product.engine_api("GET", f"/executions/{resumed['workflow_execution_id']}").json()
    abandoned = product.engine_api("GET", f"/executions/{workflow['context']['resume_from']}")
    assert abandoned.json()["status"] == "abandoned"
    assert workflow["parameters"]["alert"]["labels"]["note"] == NOTE
    assert workflow["status"] == "succeeded"
    counts = side_effects(effects)
    assert counts[f"first {again['instance']}"] == 1, "a step that was not abandoned ran again"
    assert counts[f"slow {again['instance']}"] == 2

    failed = product.episode_where(
        once["instance"],
        "the other CAB's run to end",
        lambda found: found["state"] in ("remediated", "failed"),
    )
    assert failed["state"] == "failed", failed
    assert "abandoned" in failed["state_reason"]
    assert "not idempotent" in failed["state_reason"]
    assert failed["abandoned_retries"] == 0
    assert counts[f"slow {once['instance']}"] == 1
