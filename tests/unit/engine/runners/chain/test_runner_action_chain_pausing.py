"""The action-chain runner pausing and resuming, against a scripted ChainExecutions peer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import RunnerOutcome, RunnerRequest, RunnerServices
from poundcake.engine.runners.chain.runner import ActionChainRunner

S = ExecutionStatus
ASK_RESULT = {"schema": {"type": "object"}, "roles": [], "users": [], "route": "", "ttl": 5}
CHAIN = {
    "vars": {"base": "{{ who }}"},
    "chain": [
        {
            "name": "ask",
            "ref": "core.ask",
            "publish": {"answer": "{{ ask.response.word }}"},
            "on-success": "use",
            "on-failure": "fallback",
        },
        {
            "name": "use",
            "ref": "core.echo",
            "params": {"message": "{{ base }} {{ answer }} {{ ask.result.response.word }}"},
            "publish": {"said": "{{ use.stdout }}"},
        },
        {"name": "fallback", "ref": "core.echo", "params": {"message": "no answer"}},
    ],
}


class Children:
    """Children whose status the test sets; echo children succeed with their message."""

    def __init__(self, own_status: ExecutionStatus = S.RUNNING) -> None:
        self.own_status = own_status
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.statuses: dict[str, tuple[ExecutionStatus, Any]] = {}
        self.resumed: list[str] = []
        self.pause_after: str | None = None

    def request(
        self,
        action_ref: str,
        parameters: Mapping[str, Any],
        context: Mapping[str, Any],
        **notify: Any,
    ) -> str:
        execution_id = f"child-{len(self.requests) + 1}"
        self.requests.append((execution_id, action_ref, dict(parameters)))
        if action_ref == "core.ask":
            self.statuses[execution_id] = (S.PENDING, ASK_RESULT)
        else:
            message = parameters.get("message", "")
            self.statuses[execution_id] = (S.SUCCEEDED, {"stdout": message, "succeeded": True})
        if self.pause_after == context["chain"]["name"]:
            self.own_status = S.PAUSING
        return execution_id

    def wait(self, execution_id: str) -> tuple[ExecutionStatus, Any]:
        raise AssertionError("the chain waits with wait_settled")

    def wait_settled(self, execution_id: str) -> tuple[ExecutionStatus, Any]:
        return self.statuses[execution_id]

    def workflow_status(self) -> ExecutionStatus:
        return self.own_status

    def resume(self, execution_id: str) -> None:
        self.resumed.append(execution_id)
        self.statuses[execution_id] = (S.SUCCEEDED, {"tasks": [], "published": {}})

    def cancel(self, execution_id: str) -> None:
        raise AssertionError(f"{execution_id} was canceled")


def run_chain(
    tmp_path: Path,
    children: Children,
    *,
    document: dict[str, Any] | None = None,
    result: Any = None,
    context: dict[str, Any] | None = None,
) -> RunnerOutcome:
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(document or CHAIN))
    request = RunnerRequest(
        execution_id="chain-1",
        action_ref="tests.chain",
        pack="tests",
        runner_type="action-chain",
        entry_point="chain.yaml",
        entry_point_path=path,
        runner_parameters={"display_published": True},
        action_parameters={"who": "ann"},
        context={"user": "tester", **(context or {})},
        result=result,
    )
    runner = ActionChainRunner(request, lambda kind, data: None, RunnerServices(children=children))
    runner.pre_run()
    return runner.run()


def test_a_task_waiting_for_a_response_pauses_the_chain(tmp_path: Path) -> None:
    children = Children()
    outcome = run_chain(tmp_path, children)
    assert outcome.status == S.PAUSED
    assert [(entry["name"], entry["state"]) for entry in outcome.result["tasks"]] == [
        ("ask", "pending")
    ]
    assert outcome.result["published"] == {}
    assert outcome.context == {"vars": {"base": "ann"}}
    assert [ref for _, ref, _ in children.requests] == ["core.ask"]


def test_resumed_after_the_answer_the_chain_goes_on(tmp_path: Path) -> None:
    children = Children()
    paused = run_chain(tmp_path, children)
    children.statuses["child-1"] = (S.SUCCEEDED, {**ASK_RESULT, "response": {"word": "hi"}})
    outcome = run_chain(
        tmp_path, children, result=paused.result, context=dict(paused.context or {})
    )
    assert outcome.status == S.SUCCEEDED, outcome.result
    assert [(entry["name"], entry["state"]) for entry in outcome.result["tasks"]] == [
        ("ask", "succeeded"),
        ("use", "succeeded"),
    ]
    assert outcome.result["tasks"][0]["result"]["response"] == {"word": "hi"}
    assert children.requests[-1][2] == {"message": "ann hi hi"}
    assert outcome.result["published"] == {"answer": "hi", "said": "ann hi hi"}
    assert outcome.context == {"vars": None}
    assert [ref for _, ref, _ in children.requests] == ["core.ask", "core.echo"]


def test_resumed_while_still_waiting_the_chain_pauses_again(tmp_path: Path) -> None:
    children = Children()
    paused = run_chain(tmp_path, children)
    again = run_chain(tmp_path, children, result=paused.result, context=dict(paused.context or {}))
    assert again.status == S.PAUSED
    assert len(children.requests) == 1
    assert [entry["state"] for entry in again.result["tasks"]] == ["pending"]


def test_a_timed_out_answer_takes_on_failure_and_fails_without_one(tmp_path: Path) -> None:
    children = Children()
    paused = run_chain(tmp_path, children)
    children.statuses["child-1"] = (S.TIMEOUT, ASK_RESULT)
    handled = run_chain(
        tmp_path, children, result=paused.result, context=dict(paused.context or {})
    )
    assert handled.status == S.SUCCEEDED
    assert [entry["name"] for entry in handled.result["tasks"]] == ["ask", "fallback"]

    only_ask = {
        "chain": [{"name": "ask", "ref": "core.ask", "on-success": "use"}, CHAIN["chain"][1]]
    }
    children = Children()
    paused = run_chain(tmp_path, children, document=only_ask)
    children.statuses["child-1"] = (S.TIMEOUT, ASK_RESULT)
    failed = run_chain(tmp_path, children, document=only_ask, result=paused.result)
    assert failed.status == S.FAILED
    assert [entry["state"] for entry in failed.result["tasks"]] == ["timeout"]


def test_a_pause_asked_during_a_task_stops_the_chain_after_it(tmp_path: Path) -> None:
    document = {
        "vars": {"base": "{{ who }}"},
        "chain": [
            {
                "name": "one",
                "ref": "core.echo",
                "params": {"message": "first"},
                "publish": {"first": "{{ one.stdout }}"},
                "on-success": "two",
            },
            {"name": "two", "ref": "core.echo", "params": {"message": "{{ base }}-{{ first }}"}},
        ],
    }
    children = Children()
    children.pause_after = "one"
    paused = run_chain(tmp_path, children, document=document)
    assert paused.status == S.PAUSED
    assert [entry["name"] for entry in paused.result["tasks"]] == ["one"]
    assert paused.context == {"vars": {"base": "ann", "first": "first"}}
    children.own_status = S.RUNNING
    done = run_chain(
        tmp_path, children, document=document, result=paused.result, context=paused.context
    )
    assert done.status == S.SUCCEEDED
    assert children.requests[-1][2] == {"message": "ann-first"}
    assert done.result["published"] == {"first": "first"}
    assert len(children.requests) == 2


def test_a_paused_sub_chain_is_resumed_with_its_parent(tmp_path: Path) -> None:
    document = {
        "chain": [
            {"name": "sub", "ref": "tests.sub", "on-success": "after"},
            {"name": "after", "ref": "core.echo", "params": {"message": "after"}},
        ]
    }
    children = Children()
    children.statuses["child-1"] = (S.PAUSED, {"tasks": []})

    def paused_sub(
        action_ref: str, parameters: Mapping[str, Any], context: Any, **_notify: Any
    ) -> str:
        children.requests.append(("child-1", action_ref, dict(parameters)))
        return "child-1"

    children.request = paused_sub  # type: ignore[method-assign]
    paused = run_chain(tmp_path, children, document=document)
    assert paused.status == S.PAUSED
    assert [entry["state"] for entry in paused.result["tasks"]] == ["paused"]
    del children.request
    done = run_chain(tmp_path, children, document=document, result=paused.result)
    assert children.resumed == ["child-1"]
    assert done.status == S.SUCCEEDED
    assert [entry["name"] for entry in done.result["tasks"]] == ["sub", "after"]


def test_a_cancel_asked_during_a_task_ends_the_chain_canceled(tmp_path: Path) -> None:
    children = Children(own_status=S.CANCELING)
    document = {
        "chain": [
            {"name": "one", "ref": "core.echo", "on-success": "two"},
            {"name": "two", "ref": "core.echo"},
        ]
    }
    outcome = run_chain(tmp_path, children, document=document)
    assert outcome.status == S.CANCELED
    assert [entry["name"] for entry in outcome.result["tasks"]] == ["one"]
