"""The follower against the real engine: a CAB's workflow followed step by step to its end.

Alerts go through a real Alertmanager to poundcake-api; the engine runs each CAB's workflow and
its steps as processes. A step that must wait (so the test can look at the run halfway) waits
for a gate file named in the alert's labels; nothing here depends on how long anything takes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poundcake.remediation.alerts.lifecycle import RESOLVED_WHILE_REMEDIATING
from tests.e2e.stack import Product, alertmanager_now, running_product
from tests.integration.support.mariadb import admin_sql

GATED = "while [ ! -e '{{ alert.labels.gate }}' ]; do sleep 0.1; done; "


def step(name: str, cmd: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "action": "core.local", "parameters": {"cmd": cmd}, **extra}


def cab(name: str, *steps: dict[str, Any]) -> dict[str, Any]:
    pattern = "".join(part.title() for part in name.split("_"))
    return {"name": name, "alert_name_pattern": f"^{pattern}$", "steps": list(steps)}


CABS = {
    "follow_unexpected": cab(
        "follow_unexpected",
        step("check", "echo ok", expected_result={"succeeded": True}),
        step("clean", GATED + "echo nope", expected_result={"stdout_contains": "cleaned"}),
        {"name": "notify", "action": "core.noop"},
    ),
    "follow_fixed": cab(
        "follow_fixed",
        step("check", "echo ok", expected_result={"succeeded": True}),
        step("clean", "echo cleaned", expected_result={"stdout_contains": "cleaned"}),
    ),
    "follow_slow": cab("follow_slow", step("wait", "sleep 60", timeout_seconds=1)),
    "follow_cancel": cab(
        "follow_cancel",
        step("hold", GATED + "echo done", timeout_seconds=300),
        {"name": "after", "action": "core.noop"},
    ),
    "follow_late": cab("follow_late", step("fix", GATED + "echo fixed", timeout_seconds=300)),
    "follow_lost": cab("follow_lost", step("hold", GATED + "echo done", timeout_seconds=300)),
}


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    with running_product(tmp_path_factory.mktemp("follower"), CABS) as running:
        yield running


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    return tmp_path / f"gate-{uuid.uuid4().hex[:8]}"


def fire(product: Product, alertname: str, gate: Path | None = None) -> dict[str, str]:
    labels = {"alertname": alertname, "severity": "warning", "instance": uuid.uuid4().hex[:12]}
    if gate is not None:
        labels["gate"] = str(gate)
    product.fire_through_alertmanager(labels)
    return labels


def steps(found: dict[str, Any]) -> list[tuple[int, str | None, bool | None]]:
    """The episode's extension rows: (step order, status, whether the result matched)."""
    rows = sorted(found["execution_extensions"], key=lambda row: row["step_order"])
    return [(row["step_order"], row["status"], row["result_matched"]) for row in rows]


def at_steps(
    product: Product, fired: dict[str, str], expected: list[tuple[int, str]], what: str
) -> dict[str, Any]:
    """Wait until the episode's steps stand at ``expected`` (order, status); the episode."""
    return product.episode_where(
        fired["instance"], what, lambda found: [row[:2] for row in steps(found)] == expected
    )


def workflow_status(product: Product, found: dict[str, Any]) -> str:
    response = product.engine_api("GET", f"/executions/{found['workflow_execution_id']}")
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


def test_a_cab_is_followed_step_by_step_and_an_unexpected_result_fails_it_by_name(
    product: Product, gate: Path
) -> None:
    fired = fire(product, "FollowUnexpected", gate)
    halfway = at_steps(
        product,
        fired,
        [(1, "succeeded"), (2, "running")],
        "the first step done and the second running",
    )
    assert (halfway["state"], halfway["cab_name"]) == ("remediating", "follow_unexpected")
    rows = {row["step_order"]: row for row in halfway["execution_extensions"]}
    assert {(row["cab_name"], row["request_id"]) for row in rows.values()} == {
        ("follow_unexpected", halfway["request_id"])
    }

    gate.touch()
    failed = product.episode_where(
        fired["instance"], "the episode failed", lambda found: found["state"] == "failed"
    )
    assert failed["state_reason"] == (
        'CAB "follow_unexpected": step 2 "clean" (core.local) returned an unexpected result: '
        "stdout_contains: 'cleaned' not in 'nope'"
    )
    assert steps(failed) == [(1, "succeeded", True), (2, "succeeded", False)]  # 3 never ran
    expected = {row["step_order"]: row["expected_result"] for row in failed["execution_extensions"]}
    assert expected == {1: {"succeeded": True}, 2: {"stdout_contains": "cleaned"}}
    updated = {row["step_order"]: row["id"] for row in failed["execution_extensions"]}
    assert updated == {order: row["id"] for order, row in rows.items()}, "updated, not added"
    assert workflow_status(product, failed) == "failed"


def test_a_cab_whose_steps_all_match_remediates(product: Product) -> None:
    fired = fire(product, "FollowFixed")
    done = product.episode_where(
        fired["instance"], "the episode remediated", lambda found: found["state"] == "remediated"
    )
    assert done["state_reason"] == 'CAB "follow_fixed" succeeded'
    assert steps(done) == [(1, "succeeded", True), (2, "succeeded", True)]


def test_a_step_that_times_out_is_named(product: Product) -> None:
    fired = fire(product, "FollowSlow")
    failed = product.episode_where(
        fired["instance"], "the episode failed", lambda found: found["state"] == "failed"
    )
    assert failed["state_reason"].startswith(
        'CAB "follow_slow": step 1 "wait" (core.local) timeout'
    ), failed["state_reason"]
    assert steps(failed) == [(1, "timeout", False)]


def test_resolving_a_remediating_alert_cancels_its_workflow(product: Product, gate: Path) -> None:
    fired = fire(product, "FollowCancel", gate)
    at_steps(product, fired, [(1, "running")], "the first step running")
    product.fire_through_alertmanager(fired, endsAt=alertmanager_now())
    # A CAB's workflow cancels gracefully, as StackStorm's workflows do: the running step
    # finishes, no later step starts.
    product.episode_where(
        fired["instance"],
        "the workflow canceling",
        lambda found: (
            found["state"] == "resolved" and workflow_status(product, found) == "canceling"
        ),
    )
    gate.touch()
    ended = product.episode_where(
        fired["instance"],
        "the canceled workflow followed to its end",
        lambda found: (
            found["state"] == "resolved" and found["state_reason"] != RESOLVED_WHILE_REMEDIATING
        ),
    )
    assert ended["state_reason"].startswith('resolved; CAB "follow_cancel": '), ended
    assert "canceled" in ended["state_reason"]
    assert workflow_status(product, ended) == "canceled"
    assert [row[:2] for row in steps(ended)] == [(1, "succeeded")]  # step 2 never ran


def test_the_follower_waits_for_the_rules_engine_and_cancels_a_resolved_alerts_workflow(
    product: Product, gate: Path
) -> None:
    """With the rules engine stopped the trigger instance waits and so does the episode; one
    fired and resolved in that time gets its workflow canceled as soon as the follower finds it,
    the other runs its CAB once the rules engine is back."""
    product.stop("st2rulesengine")
    try:
        waiting = fire(product, "FollowLate", gate)
        resolved = fire(product, "FollowLate", gate)
        for fired in (waiting, resolved):
            pending = product.episode_where(
                fired["instance"],
                "the episode dispatched, its trigger instance waiting",
                lambda found: (
                    (found["remediation"]["trigger_instance"] or {}).get("status") == "pending"
                ),
            )
            assert pending["state"] == "received"
        product.fire_through_alertmanager(resolved, endsAt=alertmanager_now())
        product.episode_where(
            resolved["instance"], "the episode resolved", lambda found: found["state"] == "resolved"
        )
    finally:
        product.start_engine_service("st2rulesengine")
    product.episode_where(
        resolved["instance"],
        "its workflow found and canceled",
        lambda found: (
            found["workflow_execution_id"] is not None
            and workflow_status(product, found) in ("canceling", "canceled")
        ),
    )
    gate.touch()  # both runs' steps finish; the canceled workflow starts nothing more
    canceled = product.episode_where(
        resolved["instance"],
        "the canceled workflow ended",
        lambda found: workflow_status(product, found) == "canceled",
    )
    assert canceled["state"] == "resolved"
    done = product.episode_where(
        waiting["instance"], "the episode remediated", lambda found: found["state"] == "remediated"
    )
    assert steps(done) == [(1, "succeeded", True)]


def test_a_workflow_execution_that_disappears_fails_the_episode(
    product: Product, gate: Path
) -> None:
    fired = fire(product, "FollowLost", gate)
    running = at_steps(product, fired, [(1, "running")], "the step running")
    workflow = running["workflow_execution_id"]
    admin_sql(f"DELETE FROM execution_db WHERE id = '{workflow}'", database=product.database)
    failed = product.episode_where(
        fired["instance"], "the episode failed", lambda found: found["state"] == "failed"
    )
    assert "no longer exists" in failed["state_reason"], failed["state_reason"]
    gate.touch()  # the step ends; nothing waits for it
