"""Action ``notify`` through the official ``st2`` CLI: ``st2notifier`` posts one
``core.st2.generic.notifytrigger`` per route of each section that applies, and a rule on it
runs; execution-level, action-chain task and Orquesta task notify; a notifier killed with
SIGKILL loses nothing and sends nothing twice."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.integration.support.notify_cli import (
    engine_settled,
    kill,
    module_fixtures,
    notify_payloads,
    recorded,
    spawn,
    wait_recorded,
)
from tests.integration.support.st2cli import (
    RunningEngine,
    St2,
    eventually,
    run_async,
    wait_for,
)

pytestmark = pytest.mark.integration
DONE = {"succeeded", "failed", "timeout", "canceled", "abandoned"}


engine, st2, api = module_fixtures("notify")


def test_on_success_notifies_every_route_and_the_rule_records_the_message(
    st2: St2, api: httpx.Client
) -> None:
    execution_id = run_async(st2, "notify_tests.hello", "who=ann")
    assert wait_for(api, execution_id, DONE)["status"] == "succeeded"
    lines = wait_recorded(api, execution_id, 2)
    assert lines == [
        f"chat greeted ann {execution_id} succeeded",
        f"mail greeted ann {execution_id} succeeded",
    ]
    payloads = notify_payloads(api, execution_id)
    assert sorted(payload["route"] for payload in payloads) == ["chat", "mail"]
    for payload in payloads:
        assert payload["channel"] == payload["route"]
        assert payload["action_ref"] == "notify_tests.hello"
        assert payload["runner_ref"] == "local-shell-cmd"
        assert payload["data"]["said"] == "hello ann"
        assert json.loads(payload["data"]["result"])["stdout"] == "hello ann"
        assert payload["start_timestamp"] <= payload["end_timestamp"]
    listed = st2("trigger-instance", "list", "--trigger", "core.st2.generic.notifytrigger", "-j")
    assert listed.returncode == 0, listed.stderr
    shown = listed.json()
    assert len(shown) >= 2
    assert {instance["trigger"] for instance in shown} == {"core.st2.generic.notifytrigger"}


def test_on_failure_and_on_complete_and_never_on_success(
    engine: RunningEngine, st2: St2, api: httpx.Client
) -> None:
    execution_id = run_async(st2, "notify_tests.broken")
    assert wait_for(api, execution_id, DONE)["status"] == "failed"
    lines = wait_recorded(api, execution_id, 2)
    assert lines == [
        f"audit Action notify_tests.broken completed. {execution_id} failed",
        f"pager broken for st2admin {execution_id} failed",
    ]
    engine_settled(engine)
    assert len(notify_payloads(api, execution_id)) == 2


def test_execution_level_notify_from_the_api(api: httpx.Client) -> None:
    notify = {"on-complete": {"routes": ["ops"], "message": "asked by the caller"}}
    created = api.post("/executions", json={"action": "notify_tests.quiet", "notify": notify})
    assert created.status_code == 201, created.text
    assert created.json()["liveaction"]["notify"] == notify
    execution_id = created.json()["id"]
    lines = wait_recorded(api, execution_id, 1)
    assert lines == [f"ops asked by the caller {execution_id} succeeded"]
    refused = api.post(
        "/executions",
        json={"action": "notify_tests.quiet", "notify": {"on-sucess": {"routes": ["x"]}}},
    )
    assert refused.status_code == 400
    assert "notify" in refused.json()["faultstring"]
    assert "on-sucess" in refused.json()["faultstring"]


def test_a_chain_tasks_notify_and_skip_notify(
    engine: RunningEngine, st2: St2, api: httpx.Client
) -> None:
    chain_id = run_async(st2, "notify_tests.chain")
    chain = wait_for(api, chain_id, DONE)
    assert chain["status"] == "succeeded"
    tasks = {task["name"]: task["execution_id"] for task in chain["result"]["tasks"]}
    assert wait_recorded(api, tasks["first"], 1) == [
        f"chain-task chain task first {tasks['first']} succeeded"
    ]
    engine_settled(engine)
    assert recorded(api, tasks["second"]) == []
    assert recorded(api, tasks["third"]) == []
    assert recorded(api, chain_id) == []


def test_orquesta_task_notify(engine: RunningEngine, st2: St2, api: httpx.Client) -> None:
    workflow_id = run_async(st2, "notify_tests.flow")
    assert wait_for(api, workflow_id, DONE, timeout=90)["status"] == "succeeded"
    children = {
        child["context"]["orquesta"]["task_name"]: child["id"]
        for child in api.get(f"/executions/{workflow_id}/children").json()
    }
    assert wait_recorded(api, workflow_id, 1) == [
        f"workflow Action notify_tests.flow completed. {workflow_id} succeeded"
    ]
    assert wait_recorded(api, children["first"], 1) == [
        f"workflow Action core.local completed. {children['first']} succeeded"
    ]
    engine_settled(engine)
    assert recorded(api, children["second"]) == []


def test_orquesta_notify_naming_an_unknown_task_fails_the_workflow(
    st2: St2, api: httpx.Client
) -> None:
    workflow_id = run_async(st2, "notify_tests.flow", "notify=first,nosuch")
    workflow = wait_for(api, workflow_id, DONE)
    assert workflow["status"] == "failed"
    assert "notify parameter do not exist in the workflow definition: nosuch" in json.dumps(
        workflow["result"]
    )


def test_a_notifier_killed_with_sigkill_loses_nothing(
    engine: RunningEngine, st2: St2, api: httpx.Client
) -> None:
    """Twenty executions with two routes each while one of two notifiers is SIGKILLed and
    restarted every third execution, then three more while no notifier runs at all: each
    execution gets exactly its two notify triggers once a notifier runs again."""
    spawn(engine, "st2notifier-2")
    killed = 0
    ids = []
    for index in range(20):
        ids.append(run_async(st2, "notify_tests.hello", f"who=n{index}"))
        if index % 3 == 0:
            kill(engine, "st2notifier")
            killed += 1
            spawn(engine, "st2notifier")
    for execution_id in ids:
        wait_for(api, execution_id, DONE)
    # With no notifier at all, finished executions wait for the next one.
    for name in ("st2notifier", "st2notifier-2"):
        kill(engine, name)
    waiting = [run_async(st2, "notify_tests.hello", f"who=w{index}") for index in range(3)]
    for execution_id in waiting:
        wait_for(api, execution_id, DONE)
    time.sleep(1)
    assert all(notify_payloads(api, execution_id) == [] for execution_id in waiting)
    spawn(engine, "st2notifier")
    ids += waiting

    def all_posted() -> bool:
        return all(len(notify_payloads(api, execution_id)) >= 2 for execution_id in ids)

    eventually(all_posted, "every execution's two notifications", timeout=60)
    engine_settled(engine)
    for execution_id in ids:
        routes = sorted(payload["route"] for payload in notify_payloads(api, execution_id))
        assert routes == ["chat", "mail"], (execution_id, routes)
    assert killed == 7
