"""Inquiries and action-chain pause/resume through the official ``st2`` CLI.

Real ``st2api``, ``st2auth``, ``st2scheduler``, ``st2actionrunner``, ``st2rulesengine`` and
``st2garbagecollector`` processes (the collector every second, with ``purge_inquiries``) run the
core pack and the ``chains`` test pack (``tests/fixtures/packs/pausing``): StackStorm's
``chain_test_inquiry`` and ``chain_test_pause_resume`` scenarios, with published values.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.support.commands import command_environment, run_command
from tests.integration.support.mariadb import admin_sql
from tests.integration.support.pack_actions import engine_api
from tests.integration.support.st2cli import (
    USER,
    CliResult,
    RunningEngine,
    St2,
    listing,
    logged_in,
    ok,
    output,
    run_async,
    running_engine,
    wait_for,
)
from tests.paths import REPOSITORY

PACKS = REPOSITORY / "tests" / "fixtures" / "packs" / "pausing"
SERVICES = (
    "st2api",
    "st2auth",
    "st2scheduler",
    "st2actionrunner",
    "st2rulesengine",
    "st2garbagecollector",
    "st2workflowengine",
)
OTHER_USER, OTHER_PASSWORD = "operator2", "An0ther-Passw0rd"
COMPLETED = {"succeeded", "failed", "timeout", "canceled", "abandoned"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("st2cli-inquiries")
    extra = (
        f"[content]\npacks_base_paths = {PACKS}\n\n"
        "[garbagecollector]\ncollection_interval = 1\nsleep_delay = 0.1\npurge_inquiries = True\n"
    )
    with running_engine(directory, services=SERVICES, extra_conf=extra) as running:
        created = run_command(
            "st2-setup-auth",
            "-u",
            OTHER_USER,
            "-p",
            OTHER_PASSWORD,
            "--config-file",
            str(running.config_path),
            env=command_environment(directory),
        )
        assert created.returncode == 0, created.stdout + created.stderr
        yield running


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    return logged_in(engine, tmp_path / "home")


@pytest.fixture
def api(st2: St2, engine: RunningEngine) -> Iterator[httpx.Client]:
    with engine_api(engine, st2) as client:
        yield client


def workflow_json(result: CliResult) -> dict[str, Any]:
    """The execution a ``-j`` command on a workflow printed (its children's list follows)."""
    assert result.returncode == 0, output(result)
    document, _ = json.JSONDecoder().raw_decode(result.stdout.lstrip())
    assert isinstance(document, dict)
    return document


def task(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The last entry of a chain's ``result.tasks`` named ``name``."""
    found = [entry for entry in document["result"]["tasks"] if entry["name"] == name]
    assert found, document["result"]
    entry: dict[str, Any] = found[-1]
    return entry


def lease_owner(engine: RunningEngine, execution_id: str) -> object:
    found = re.search(r"^db_name = (\S+)$", engine.config_path.read_text(), re.MULTILINE)
    assert found
    database = found.group(1)
    rows = admin_sql(
        "SELECT l.lease_owner FROM liveaction_db l JOIN execution_db e "
        f"ON e.liveaction_id = l.id WHERE e.id = '{execution_id}'",
        database=database,
    )
    return rows[0][0]


# --- core.ask and /v1/inquiries ---------------------------------------------------------------


def test_core_ask_waits_pending_and_is_listed(
    st2: St2, api: httpx.Client, engine: RunningEngine
) -> None:
    result = st2("run", "-j", "core.ask", "route=ops", "ttl=30")
    assert result.returncode == 0, output(result)
    document = json.loads(result.stdout)
    inquiry_id = document["id"]
    assert document["status"] == "pending"
    assert document["result"] == {
        "schema": {
            "title": "response_data",
            "type": "object",
            "properties": {
                "continue": {
                    "type": "boolean",
                    "description": "Would you like to continue the workflow?",
                    "required": True,
                }
            },
        },
        "roles": [],
        "users": [],
        "route": "ops",
        "ttl": 30,
    }
    listed = listing(st2("inquiry", "list", "-j"))
    assert {"id": inquiry_id, "roles": [], "users": [], "route": "ops", "ttl": 30} in listed
    table = st2("inquiry", "list")
    assert inquiry_id in table.stdout and "ops" in table.stdout, output(table)
    shown = ok(st2("inquiry", "get", inquiry_id, "-j"))
    assert shown == {"id": inquiry_id, **document["result"]}
    page = api.get("/inquiries", params={"limit": 1})
    assert page.status_code == 200
    assert int(page.headers["X-Total-Count"]) >= 1 and len(page.json()) == 1
    proxied = httpx.get(
        f"http://127.0.0.1:{engine.api_port}/api/v1/inquiries/{inquiry_id}",
        headers=dict(api.headers),
        timeout=30,
    )
    assert proxied.json() == shown


def test_respond_with_a_valid_and_an_invalid_response(st2: St2, api: httpx.Client) -> None:
    inquiry_id = run_async(st2, "core.ask")
    wait_for(api, inquiry_id, {"pending"})
    refused = st2("inquiry", "respond", inquiry_id, "-r", '{"continue": "maybe"}')
    assert refused.returncode != 0
    assert (
        f'Response for inquiry "{inquiry_id}" did not pass schema validation. '
        "continue: 'maybe' is not of type 'boolean'" in output(refused)
    )
    missing = st2("inquiry", "respond", inquiry_id, "-r", "{}")
    assert "'continue' is a required property" in output(missing)
    still = api.get(f"/executions/{inquiry_id}").json()
    assert still["status"] == "pending" and "response" not in still["result"]
    accepted = st2("inquiry", "respond", inquiry_id, "-r", '{"continue": true}')
    assert accepted.returncode == 0, output(accepted)
    assert f"Response accepted for inquiry {inquiry_id}." in accepted.stdout
    done = wait_for(api, inquiry_id, COMPLETED)
    assert done["status"] == "succeeded"
    assert done["result"]["response"] == {"continue": True}
    # The CLI reads the inquiry first; StackStorm answers 400 for one already answered, which
    # the CLI shows as a missing resource.
    again = st2("inquiry", "respond", inquiry_id, "-r", '{"continue": true}')
    assert again.returncode != 0
    assert f'Resource with id "{inquiry_id}" doesn\'t exist.' in output(again)
    twice = api.put(f"/inquiries/{inquiry_id}", json={"id": inquiry_id, "response": {}})
    assert twice.status_code == 400
    assert twice.json() == {"faultstring": f'Inquiry "{inquiry_id}" has already been responded to.'}
    assert inquiry_id not in [item["id"] for item in listing(st2("inquiry", "list", "-j"))]


def test_inquiry_api_errors_are_stackstorms(api: httpx.Client) -> None:
    unknown = api.get(f"/inquiries/{'0' * 24}")
    assert unknown.status_code == 404
    assert unknown.json() == {"faultstring": "The resource could not be found."}
    ran = api.post("/executions", json={"action": "core.noop"}).json()
    not_one = api.get(f"/inquiries/{ran['id']}")
    assert not_one.status_code == 400
    assert not_one.json() == {"faultstring": f'Action execution "{ran["id"]}" is not an inquiry.'}
    answer = api.put(f"/inquiries/{ran['id']}", json={"id": ran["id"], "response": {}})
    assert answer.status_code == 400
    no_response = api.put(f"/inquiries/{ran['id']}", json={"id": ran["id"]})
    assert no_response.json() == {"faultstring": "'response' is a required property"}


def test_a_users_restricted_inquiry_refuses_another_user(
    st2: St2, api: httpx.Client, engine: RunningEngine, tmp_path: Path
) -> None:
    inquiry_id = run_async(st2, "core.ask", f"users={OTHER_USER}", "roles=nobody-has-this")
    wait_for(api, inquiry_id, {"pending"})
    refused = st2("inquiry", "respond", inquiry_id, "-r", '{"continue": true}')
    assert refused.returncode != 0
    assert (
        f'User "{USER}" does not have permission to respond to inquiry "{inquiry_id}".'
        in output(refused)
    )
    raw = api.put(f"/inquiries/{inquiry_id}", json={"id": inquiry_id, "response": {}})
    assert raw.status_code == 403
    assert api.get(f"/executions/{inquiry_id}").json()["status"] == "pending"
    other = St2(engine, tmp_path / "other-home")
    other.login(OTHER_USER, OTHER_PASSWORD)
    accepted = other("inquiry", "respond", inquiry_id, "-r", '{"continue": false}')
    assert accepted.returncode == 0, output(accepted)
    assert wait_for(api, inquiry_id, COMPLETED)["result"]["response"] == {"continue": False}


def test_interactive_respond_prompts_for_each_property(st2: St2, api: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "approver": {"type": "string", "required": True},
            "approved": {"type": "boolean", "required": True},
        },
    }
    inquiry_id = run_async(st2, "core.ask", f"schema={json.dumps(schema)}")
    wait_for(api, inquiry_id, {"pending"})
    answered = st2.on_terminal("inquiry", "respond", inquiry_id, answers=["ann", "yes"])
    assert answered.returncode == 0, answered.stdout
    assert "approver" in answered.stdout and "approved" in answered.stdout
    assert f"Response accepted for inquiry {inquiry_id}." in answered.stdout
    document = wait_for(api, inquiry_id, COMPLETED)
    assert document["result"]["response"] == {"approver": "ann", "approved": True}


def test_a_rule_on_the_inquiry_trigger_fires(st2: St2, api: httpx.Client, tmp_path: Path) -> None:
    rule = {
        "name": "notify_inquiry",
        "pack": "chains",
        "description": "Notify relevant users of an Inquiry action",
        "enabled": True,
        "trigger": {"type": "core.st2.generic.inquiry"},
        "criteria": {"trigger.route": {"type": "equals", "pattern": "notify-me"}},
        "action": {
            "ref": "core.echo",
            "parameters": {"message": "Inquiry {{ trigger.id }} is awaiting an approval action"},
        },
    }
    path = tmp_path / "notify_inquiry.yaml"
    path.write_text(yaml.safe_dump(rule))
    ok(st2("rule", "create", str(path), "-j"))
    inquiry_id = run_async(st2, "core.ask", "route=notify-me")
    wait_for(api, inquiry_id, {"pending"})

    def fired() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = api.get(
            "/executions", params={"rule": "chains.notify_inquiry"}
        ).json()
        return found

    deadline = time.monotonic() + 60
    while not fired():
        assert time.monotonic() < deadline, "the rule never fired"
        time.sleep(0.5)
    echo = wait_for(api, fired()[0]["id"], COMPLETED)
    assert echo["result"]["stdout"].strip() == (
        f"Inquiry {inquiry_id} is awaiting an approval action"
    )
    instance = echo["trigger_instance"]
    assert instance["trigger"] == "core.st2.generic.inquiry"
    assert instance["payload"] == {"id": inquiry_id, "route": "notify-me"}


# --- action-chains with inquiries -------------------------------------------------------------


def test_a_chain_pauses_at_an_inquiry_and_goes_on_when_answered(
    st2: St2, api: httpx.Client, engine: RunningEngine
) -> None:
    result = st2("run", "chains.ask_then_echo")
    assert result.returncode == 0, output(result)
    assert re.search(r"status: paused", result.stdout), result.stdout
    found = re.search(r"\bid: ([0-9a-f]{24})", result.stdout)
    assert found, result.stdout
    chain = api.get(f"/executions/{found.group(1)}").json()
    assert chain["status"] == "paused"
    asked = task(chain, "task1")
    assert asked["state"] == "pending"
    assert lease_owner(engine, chain["id"]) is None
    inquiry_id = asked["execution_id"]
    assert inquiry_id in [item["id"] for item in listing(st2("inquiry", "list", "-j"))]
    assert ok(st2("inquiry", "get", inquiry_id, "-j"))["route"] == "developers"
    accepted = st2("inquiry", "respond", inquiry_id, "-r", '{"secondfactor": "s3cond"}')
    assert accepted.returncode == 0, output(accepted)
    done = wait_for(api, chain["id"], COMPLETED)
    assert done["status"] == "succeeded", done["result"]
    assert [entry["name"] for entry in done["result"]["tasks"]] == ["task1", "task2"]
    assert task(done, "task1")["state"] == "succeeded"
    assert task(done, "task1")["result"]["response"] == {"secondfactor": "s3cond"}
    assert task(done, "task2")["result"]["stdout"].strip() == (
        "We can now authenticate to foo service with s3cond (s3cond)"
    )
    assert done["result"]["published"] == {"factor": "s3cond"}
    assert "vars" not in done["context"]
    statuses = [entry["status"] for entry in done["log"]]
    assert statuses[-5:] == ["pausing", "paused", "resuming", "running", "succeeded"]


def test_a_nested_chain_pauses_its_root_and_resumes_when_answered(
    st2: St2, api: httpx.Client
) -> None:
    parent_id = run_async(st2, "chains.ask_parent")
    parent = wait_for(api, parent_id, {"paused"} | COMPLETED)
    assert parent["status"] == "paused", parent["result"]
    child = wait_for(api, task(parent, "task1")["execution_id"], {"paused"})
    inquiry_id = task(child, "task1")["execution_id"]
    assert api.get(f"/executions/{inquiry_id}").json()["status"] == "pending"
    accepted = st2("inquiry", "respond", inquiry_id, "-r", '{"secondfactor": "nested"}')
    assert accepted.returncode == 0, output(accepted)
    done = wait_for(api, parent_id, COMPLETED)
    assert done["status"] == "succeeded", done["result"]
    assert task(done, "task2")["result"]["stdout"].strip() == "parent task2"
    child = api.get(f"/executions/{child['id']}").json()
    assert child["status"] == "succeeded"
    assert "nested (nested)" in task(child, "task2")["result"]["stdout"]


def test_inquiries_past_their_ttl_time_out_and_fail_their_chain(
    st2: St2, api: httpx.Client
) -> None:
    inquiry_id = run_async(st2, "core.ask", "ttl=1")
    never = run_async(st2, "core.ask", "ttl=0")
    chain_id = run_async(st2, "chains.ask_then_echo", "ttl=1")
    workflow_id = run_async(st2, "chains.orquesta_ask_expires", "ttl=1")
    paused = wait_for(api, chain_id, {"paused"})
    asked = task(paused, "task1")["execution_id"]
    document = wait_for(api, inquiry_id, COMPLETED, timeout=120)
    assert document["status"] == "timeout"
    assert document["result"]["ttl"] == 1 and "response" not in document["result"]
    refused = api.put(f"/inquiries/{inquiry_id}", json={"id": inquiry_id, "response": {}})
    assert refused.status_code == 400
    assert refused.json() == {
        "faultstring": f'Inquiry "{inquiry_id}" timed out and cannot be responded to.'
    }
    assert api.get(f"/executions/{never}").json()["status"] == "pending"
    done = wait_for(api, chain_id, COMPLETED, timeout=60)
    assert done["status"] == "failed", done["result"]
    assert api.get(f"/executions/{asked}").json()["status"] == "timeout"
    assert [entry["name"] for entry in done["result"]["tasks"]] == ["task1"]
    assert task(done, "task1")["state"] == "timeout"
    # Under Orquesta the timeout is the task's failure, which its transitions can handle.
    handled = wait_for(api, workflow_id, COMPLETED, timeout=60)
    assert handled["status"] == "succeeded", handled["result"]
    assert handled["result"]["output"] == {"outcome": "failed"}
    asked_by_workflow = [
        child
        for child in api.get("/executions", params={"parent": workflow_id}).json()
        if child["action"]["ref"] == "core.ask"
    ]
    assert [child["status"] for child in asked_by_workflow] == ["timeout"]


# --- action-chain pause and resume ------------------------------------------------------------


def test_pause_and_resume_a_chain(
    st2: St2, api: httpx.Client, engine: RunningEngine, tmp_path: Path
) -> None:
    marker = tmp_path / "hold"
    marker.touch()
    chain_id = run_async(st2, "chains.pause_resume", f"tempfile={marker}", "message=resumed-fine")
    running = wait_for(api, chain_id, {"running"})
    deadline = time.monotonic() + 30
    while not running.get("children"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
        running = api.get(f"/executions/{chain_id}").json()
    assert workflow_json(st2("execution", "pause", chain_id, "-j"))["status"] == "pausing"
    assert api.get(f"/executions/{chain_id}").json()["context"]["paused_by"] == USER
    time.sleep(1)
    assert api.get(f"/executions/{chain_id}").json()["status"] == "pausing"
    marker.unlink()
    stopped = wait_for(api, chain_id, {"paused"} | COMPLETED)
    assert stopped["status"] == "paused", stopped["result"]
    assert [entry["name"] for entry in stopped["result"]["tasks"]] == ["task1"]
    assert stopped["result"]["published"] == {"first": "task1-done"}
    assert stopped["context"]["vars"] == {"greeting": "hello-resumed-fine", "first": "task1-done"}
    assert lease_owner(engine, chain_id) is None
    time.sleep(1)
    assert len(api.get(f"/executions/{chain_id}").json()["children"]) == 1
    resumed = workflow_json(st2("execution", "resume", chain_id, "-j"))
    assert resumed["status"] in {"resuming", "running", "succeeded"}
    done = wait_for(api, chain_id, COMPLETED)
    assert done["status"] == "succeeded", done["result"]
    assert [entry["name"] for entry in done["result"]["tasks"]] == ["task1", "task2"]
    second = "hello-resumed-fine task1-done resumed-fine"
    assert task(done, "task2")["result"]["stdout"].strip() == second
    assert done["result"]["published"] == {"first": "task1-done", "second": second}
    assert done["context"]["resumed_by"] == USER and "vars" not in done["context"]


def test_pausing_a_chain_pauses_its_running_sub_chain(
    st2: St2, api: httpx.Client, tmp_path: Path
) -> None:
    marker = tmp_path / "hold-sub"
    marker.touch()
    parent_id = run_async(
        st2, "chains.pause_resume_with_subchain", f"tempfile={marker}", "message=sub"
    )
    deadline = time.monotonic() + 30
    while True:
        parent = api.get(f"/executions/{parent_id}").json()
        children = parent.get("children")
        if children:
            sub = api.get(f"/executions/{children[0]}").json()
            if sub["status"] == "running" and sub.get("children"):
                break
        assert time.monotonic() < deadline, "the sub-chain never started its task"
        time.sleep(0.2)
    workflow_json(st2("execution", "pause", parent_id, "-j"))
    assert api.get(f"/executions/{sub['id']}").json()["status"] == "pausing"
    marker.unlink()
    assert wait_for(api, sub["id"], {"paused"} | COMPLETED)["status"] == "paused"
    parent = wait_for(api, parent_id, {"paused"} | COMPLETED)
    assert parent["status"] == "paused"
    assert [entry["state"] for entry in parent["result"]["tasks"]] == ["paused"]
    workflow_json(st2("execution", "resume", parent_id, "-j"))
    done = wait_for(api, parent_id, COMPLETED)
    assert done["status"] == "succeeded", done["result"]
    assert task(done, "task2")["result"]["stdout"].strip() == "foobar"
    sub_done = api.get(f"/executions/{sub['id']}").json()
    assert sub_done["status"] == "succeeded"
    assert task(sub_done, "task2")["result"]["stdout"].strip() == "hello-sub task1-done sub"


def test_cancel_a_paused_chain(st2: St2, api: httpx.Client, tmp_path: Path) -> None:
    marker = tmp_path / "hold-cancel"
    marker.touch()
    chain_id = run_async(st2, "chains.pause_resume", f"tempfile={marker}", "message=x")
    wait_for(api, chain_id, {"running"})
    deadline = time.monotonic() + 30
    while not api.get(f"/executions/{chain_id}").json().get("children"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    workflow_json(st2("execution", "pause", chain_id, "-j"))
    marker.unlink()
    wait_for(api, chain_id, {"paused"})
    canceled = st2("execution", "cancel", chain_id)
    assert canceled.returncode == 0, output(canceled)
    done = wait_for(api, chain_id, COMPLETED)
    assert done["status"] == "canceled"
    assert done["result"]["message"] == "Action canceled by user."
    assert [entry["name"] for entry in done["result"]["tasks"]] == ["task1"]
    resumed = st2("execution", "resume", chain_id)
    assert resumed.returncode != 0


def test_pause_is_refused_for_what_cannot_pause(st2: St2, api: httpx.Client) -> None:
    inquiry_id = run_async(st2, "core.ask")
    wait_for(api, inquiry_id, {"pending"})
    refused = st2("execution", "pause", inquiry_id)
    assert refused.returncode != 0
    assert 'because it is not supported by the "inquirer" runner.' in output(refused)
    resumed = st2("execution", "resume", inquiry_id)
    assert 'because it is not supported by the "inquirer" runner.' in output(resumed)
    canceled = st2("execution", "cancel", inquiry_id)
    assert canceled.returncode == 0, output(canceled)
    assert wait_for(api, inquiry_id, COMPLETED)["status"] == "canceled"
