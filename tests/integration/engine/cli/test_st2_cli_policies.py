"""Policies through the official ``st2`` CLI: ``st2 policy-type list|get``, ``st2 policy
list|get|create|update|delete``, ``action.retry`` on failure and on timeout, and
``action.concurrency`` and ``action.concurrency.attr`` with two schedulers and two runners."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.support.notify_cli import (
    engine_settled,
    executions,
    kill,
    module_fixtures,
    spawn,
)
from tests.integration.support.st2cli import (
    RunningEngine,
    St2,
    eventually,
    ok,
    output,
    run_async,
    wait_for,
)

pytestmark = pytest.mark.integration
DONE = {"succeeded", "failed", "timeout", "canceled", "abandoned"}


engine, st2, api = module_fixtures("policies", extra_services=("st2scheduler", "st2actionrunner"))


def test_policy_types_and_the_packs_policies(st2: St2) -> None:
    types = {row["name"]: row for row in ok(st2("policy-type", "list", "-j"))}
    assert {"concurrency", "concurrency.attr", "retry"} <= set(types)
    assert {row["resource_type"] for row in types.values()} == {"action"}
    retry = ok(st2("policy-type", "get", "action.retry", "-j"))
    assert retry["parameters"]["retry_on"]["enum"] == ["failure", "timeout"]
    assert ok(st2("policy-type", "list", "-r", "action", "-j"))
    listed = ok(st2("policy", "list", "--pack", "notify_tests", "-j"))
    assert sorted(row["ref"] for row in listed) == [
        "notify_tests.busy.concurrency",
        "notify_tests.busy_host.concurrency",
        "notify_tests.flaky.retry",
        "notify_tests.slow.retry",
        "notify_tests.unlucky.retry",
    ]
    by_type = ok(st2("policy", "list", "-pt", "action.retry", "-j"))
    assert {row["ref"] for row in by_type} == {
        "notify_tests.flaky.retry",
        "notify_tests.slow.retry",
        "notify_tests.unlucky.retry",
    }
    flaky = ok(st2("policy", "get", "notify_tests.flaky.retry", "-j"))
    assert flaky["parameters"] == {"retry_on": "failure", "max_retry_count": 2, "delay": 2}
    assert flaky["resource_ref"] == "notify_tests.flaky"


def test_policy_create_update_delete(st2: St2, tmp_path: Path) -> None:
    document: dict[str, Any] = {
        "name": "quiet.concurrency",
        "pack": "notify_tests",
        "resource_ref": "notify_tests.quiet",
        "policy_type": "action.concurrency",
        "parameters": {"threshold": 3},
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    created = ok(st2("policy", "create", str(path), "-j"))
    assert created["ref"] == "notify_tests.quiet.concurrency"
    assert created["parameters"] == {"threshold": 3, "action": "delay"}
    again = st2("policy", "create", str(path))
    assert again.returncode != 0
    assert "409" in output(again) or "duplicate" in output(again).lower()

    document["parameters"] = {"threshold": 1, "action": "cancel"}
    path.write_text(yaml.safe_dump(document))
    updated = ok(st2("policy", "update", "notify_tests.quiet.concurrency", str(path), "-j"))
    assert updated["id"] == created["id"]
    assert updated["parameters"] == {"threshold": 1, "action": "cancel"}

    document["parameters"] = {"threshold": "many", "limit": 2}
    path.write_text(yaml.safe_dump(document))
    refused = st2("policy", "update", "notify_tests.quiet.concurrency", str(path))
    assert refused.returncode != 0
    assert "parameters" in output(refused)
    assert "limit" in output(refused) or "many" in output(refused)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump({**document, "name": "x", "policy_type": "action.nope"}))
    refused = st2("policy", "create", str(unknown))
    assert refused.returncode != 0
    assert "action.nope" in output(refused)

    deleted = st2("policy", "delete", "notify_tests.quiet.concurrency")
    assert deleted.returncode == 0, output(deleted)
    missing = st2("policy", "get", "notify_tests.quiet.concurrency")
    assert missing.returncode != 0
    assert "not found" in output(missing).lower()


def _running_at(execution: dict[str, Any]) -> datetime:
    entry = next(item for item in execution["log"] if item["status"] == "running")
    return datetime.fromisoformat(entry["timestamp"])


def _ended_at(execution: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(execution["end_timestamp"])


def _retries(api: httpx.Client, action: str, count: int) -> list[dict[str, Any]]:
    def finished() -> list[dict[str, Any]] | None:
        found = executions(api, action)
        if len(found) >= count and all(row["status"] in DONE for row in found):
            return found
        return None

    return list(eventually(finished, f"{count} finished executions of {action}", timeout=90))


def test_retry_on_failure_retries_max_retry_count_times_after_the_delay(
    engine: RunningEngine, st2: St2, api: httpx.Client
) -> None:
    first = run_async(st2, "notify_tests.flaky")
    runs = _retries(api, "notify_tests.flaky", 3)
    engine_settled(engine)
    runs = executions(api, "notify_tests.flaky")
    assert [run["status"] for run in runs] == ["failed"] * 3
    assert runs[0]["id"] == first
    assert "policies" not in runs[0]["context"]
    for count, (before, after) in enumerate(itertools.pairwise(runs), start=1):
        assert after["context"]["policies"]["retry"] == {
            "applied_policy": "notify_tests.flaky.retry",
            "retry_count": count,
            "retried_liveaction_id": before["liveaction"]["id"],
        }
        waited = (_running_at(after) - _ended_at(before)).total_seconds()
        assert waited >= 2, waited
    listed = ok(st2("execution", "list", "--action", "notify_tests.flaky", "-j"))
    assert sorted(row["id"] for row in listed) == sorted(run["id"] for run in runs)


def test_retry_on_timeout(engine: RunningEngine, st2: St2, api: httpx.Client) -> None:
    run_async(st2, "notify_tests.slow")
    runs = _retries(api, "notify_tests.slow", 2)
    engine_settled(engine)
    runs = executions(api, "notify_tests.slow")
    assert [run["status"] for run in runs] == ["timeout", "timeout"]
    assert runs[1]["context"]["policies"]["retry"]["retry_count"] == 1
    # A failure is not retried by a policy that retries on timeout only.
    assert len(executions(api, "notify_tests.flaky")) == 3


def test_a_retry_survives_the_notifier_and_every_scheduler_killed(
    engine: RunningEngine, st2: St2, api: httpx.Client
) -> None:
    """SIGKILL the notifier and both schedulers right after the first run failed (whether or not
    the notifier had requested the retry yet) and start them four seconds later: the retry is
    requested once and runs, no sooner than its delay."""
    first = run_async(st2, "notify_tests.unlucky")
    eventually(
        lambda: api.get(f"/executions/{first}").json()["status"] in DONE, "the first run to end"
    )
    killed = ("st2notifier", "st2scheduler", "st2scheduler-2")
    for name in killed:
        kill(engine, name)
    time.sleep(4)
    for name in killed:
        spawn(engine, name)
    runs = _retries(api, "notify_tests.unlucky", 2)
    engine_settled(engine)
    runs = executions(api, "notify_tests.unlucky")
    assert [run["status"] for run in runs] == ["failed", "failed"]
    assert (
        runs[1]["context"]["policies"]["retry"]["retried_liveaction_id"]
        == (runs[0]["liveaction"]["id"])
    )
    assert (_running_at(runs[1]) - _ended_at(runs[0])).total_seconds() >= 3


class Sampler:
    """Counts running executions of an action (per ``host`` parameter) every 50 ms."""

    def __init__(self, api: httpx.Client, action: str) -> None:
        self.api = api
        self.action = action
        self.most: dict[str, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            counts: dict[str, int] = {}
            for row in executions(self.api, self.action, "id,status,parameters"):
                if row["status"] == "running":
                    host = str((row.get("parameters") or {}).get("host", "-"))
                    counts[host] = counts.get(host, 0) + 1
            for host, count in counts.items():
                self.most[host] = max(self.most.get(host, 0), count)
            self.stop.wait(0.05)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def test_concurrency_delays_with_two_schedulers_and_two_runners(
    engine: RunningEngine, st2: St2, api: httpx.Client
) -> None:
    with httpx.Client(base_url=engine.api_url, headers=api.headers, timeout=30) as sampling:
        sampler = Sampler(sampling, "notify_tests.busy")
        try:
            ids = [run_async(st2, "notify_tests.busy") for _ in range(4)]
            documents = [wait_for(api, execution_id, DONE, timeout=90) for execution_id in ids]
        finally:
            sampler.close()
    assert [document["status"] for document in documents] == ["succeeded"] * 4
    # At least one sample saw a run and none saw two; the engine's own spans below are the proof.
    assert sampler.most == {"-": 1}
    assert sum("delayed" in [e["status"] for e in d["log"]] for d in documents) >= 2
    spans = sorted((_running_at(d), _ended_at(d)) for d in documents)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end


def test_concurrency_attr_cancels_per_attribute_value(
    engine: RunningEngine, st2: St2, api: httpx.Client, tmp_path: Path
) -> None:
    """The first host=a execution runs until the test creates a gate file, so the second host=a
    and the host=b executions are both asked for, and decided, while it is still in flight: the
    order comes from conditions, never from timestamps (a loaded machine cannot reorder it)."""
    gate = tmp_path / "release-a1"
    blocked = f"cmd=until [ -e {gate} ]; do sleep 0.1; done"
    with httpx.Client(base_url=engine.api_url, headers=api.headers, timeout=30) as sampling:
        sampler = Sampler(sampling, "notify_tests.busy_host")
        try:
            first_a = run_async(st2, "notify_tests.busy_host", "host=a", blocked)
            wait_for(api, first_a, {"running"} | DONE)
            second_a = run_async(st2, "notify_tests.busy_host", "host=a")
            a2 = wait_for(api, second_a, DONE)
            only_b = run_async(st2, "notify_tests.busy_host", "host=b")
            b = wait_for(api, only_b, DONE)
            # a1 cannot end before the gate exists: everything above happened while it ran.
            assert api.get(f"/executions/{first_a}").json()["status"] == "running"
            gate.touch()
            a1 = wait_for(api, first_a, DONE)
        finally:
            gate.touch()
            sampler.close()
    assert a1["status"] == "succeeded", a1
    assert a2["status"] == "canceled", a2
    assert "notify_tests.busy_host.concurrency" in a2["result"]["message"]
    # host=b, asked for while a host=a execution was in flight, was not held back by it.
    assert b["status"] == "succeeded", b
    assert "delayed" not in [entry["status"] for entry in b["log"]]
    assert sampler.most == {"a": 1, "b": 1}
