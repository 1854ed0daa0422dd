"""The action-chain runner's flow against a scripted ChildExecutions peer (no engine)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import RunnerOutcome, RunnerRequest, RunnerServices
from poundcake.engine.runners.chain.runner import ActionChainRunner
from poundcake.exceptions import NotFoundError, ValidationError

S = ExecutionStatus
Behaviour = Callable[[Mapping[str, Any]], tuple[ExecutionStatus, Any]]


def echo(parameters: Mapping[str, Any]) -> tuple[ExecutionStatus, Any]:
    return S.SUCCEEDED, {"stdout": parameters.get("cmd", ""), "succeeded": True}


def fail(parameters: Mapping[str, Any]) -> tuple[ExecutionStatus, Any]:
    return S.FAILED, {"stdout": "", "stderr": "boom", "succeeded": False}


def time_out(parameters: Mapping[str, Any]) -> tuple[ExecutionStatus, Any]:
    return S.TIMEOUT, {"error": "Action failed to complete in 1 seconds"}


class ScriptedChildren:
    """ChildExecutions whose children finish at once with what their action's behaviour says."""

    def __init__(self, behaviours: dict[str, Behaviour]) -> None:
        self.behaviours = behaviours
        self.requests: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        self.canceled: list[str] = []
        self.notify: dict[str, tuple[Mapping[str, Any] | None, bool]] = {}

    def request(
        self,
        action_ref: str,
        parameters: Mapping[str, Any],
        context: Mapping[str, Any],
        **notify: Any,
    ) -> str:
        if action_ref == "tests.refused":
            raise ValidationError("'cmd' is a required property")
        if action_ref not in self.behaviours:
            raise NotFoundError(f'Action "{action_ref}" cannot be found.')
        execution_id = f"child-{len(self.requests) + 1}"
        self.requests.append((execution_id, action_ref, dict(parameters), dict(context)))
        self.notify[context["chain"]["name"]] = (
            notify.get("notify"),
            notify.get("skip_notify", False),
        )
        return execution_id

    def wait(self, execution_id: str) -> tuple[ExecutionStatus, Any]:
        _, action_ref, parameters, _ = next(r for r in self.requests if r[0] == execution_id)
        return self.behaviours[action_ref](parameters)

    def wait_settled(self, execution_id: str) -> tuple[ExecutionStatus, Any]:
        return self.wait(execution_id)

    def workflow_status(self) -> ExecutionStatus:
        return S.RUNNING

    def resume(self, execution_id: str) -> None:
        raise AssertionError(f"nothing here is paused, yet {execution_id} was resumed")

    def cancel(self, execution_id: str) -> None:
        self.canceled.append(execution_id)


class DictDatastore:
    """A datastore holding a few system-scope values."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get_value(
        self, name: str, *, local: bool = True, scope: str = "system", decrypt: bool = False
    ) -> str | None:
        return self.values.get(name) if scope == "system" else None

    def set_value(self, name: str, value: str, **options: Any) -> bool:
        self.values[name] = value
        return True

    def delete_value(self, name: str, **options: Any) -> bool:
        return self.values.pop(name, None) is not None

    def list_values(self, **options: Any) -> list[dict[str, Any]]:
        return [{"name": name, "value": value} for name, value in self.values.items()]


def run_chain(
    tmp_path: Path,
    document: dict[str, Any],
    children: Any,
    *,
    parameters: dict[str, Any] | None = None,
    runner_parameters: dict[str, Any] | None = None,
    datastore: Any = None,
    notify: dict[str, Any] | None = None,
) -> RunnerOutcome:
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(document))
    request = RunnerRequest(
        execution_id="parent-1",
        action_ref="tests.chain",
        pack="tests",
        runner_type="action-chain",
        entry_point="chain.yaml",
        entry_point_path=path,
        runner_parameters=runner_parameters or {"display_published": True},
        action_parameters=parameters or {},
        pack_config={"region": "eu"},
        user="tester",
        context={"user": "tester", "pack": "tests"},
        notify=notify or {},
    )
    runner = ActionChainRunner(
        request, lambda kind, data: None, RunnerServices(children=children, datastore=datastore)
    )
    runner.pre_run()
    outcome = runner.run()
    runner.post_run(outcome)
    return outcome


def test_values_flow_through_params_vars_results_and_publish(tmp_path: Path) -> None:
    children = ScriptedChildren({"tests.echo": echo})
    document = {
        "vars": {"base": "{{ who }}-{{ st2kv.system.suffix }}"},
        "chain": [
            {
                "name": "one",
                "ref": "tests.echo",
                "params": {"cmd": "{{ base }}"},
                "publish": {"first_out": "{{ one.stdout }}"},
                "on-success": "two",
            },
            {
                "name": "two",
                "ref": "tests.echo",
                "params": {"cmd": "{{ first_out }} {{ config_context.region }}"},
                "on-success": "three",
            },
            {
                "name": "three",
                "ref": "tests.echo",
                "params": {
                    "cmd": "{{ __results.two.stdout }}/{{ action_context.parent.execution_id }}"
                },
            },
        ],
    }
    outcome = run_chain(
        tmp_path,
        document,
        children,
        parameters={"who": "ann"},
        datastore=DictDatastore({"suffix": "kv"}),
    )
    assert outcome.status == S.SUCCEEDED
    commands = [request[2]["cmd"] for request in children.requests]
    assert commands == ["ann-kv", "ann-kv eu", "ann-kv eu/parent-1"]
    assert outcome.result["published"] == {"first_out": "ann-kv"}
    tasks = outcome.result["tasks"]
    assert [task["name"] for task in tasks] == ["one", "two", "three"]
    assert [task["id"] for task in tasks] == ["one", "two", "three"]
    assert [task["execution_id"] for task in tasks] == ["child-1", "child-2", "child-3"]
    assert {task["state"] for task in tasks} == {"succeeded"}
    assert tasks[1]["result"] == {"stdout": "ann-kv eu", "succeeded": True}
    assert tasks[0]["created_at"].endswith("Z") and tasks[0]["updated_at"] >= tasks[0]["created_at"]
    assert children.requests[0][3]["chain"]["name"] == "one"
    assert "error" not in outcome.result


def test_a_single_expression_keeps_its_type(tmp_path: Path) -> None:
    children = ScriptedChildren({"tests.echo": echo})
    document = {"chain": [{"name": "a", "ref": "tests.echo", "params": {"count": "{{ n }}"}}]}
    run_chain(tmp_path, document, children, parameters={"n": 5})
    assert children.requests[0][2] == {"count": 5}


def test_handled_failure_succeeds_and_unhandled_failure_fails(tmp_path: Path) -> None:
    children = ScriptedChildren({"tests.fail": fail, "tests.echo": echo})
    handled = {
        "chain": [
            {"name": "bad", "ref": "tests.fail", "on-success": "never", "on-failure": "fix"},
            {"name": "never", "ref": "tests.echo"},
            {"name": "fix", "ref": "tests.echo", "params": {"cmd": "{{ bad.stderr }}"}},
        ]
    }
    outcome = run_chain(tmp_path, handled, children)
    assert outcome.status == S.SUCCEEDED
    assert [(t["name"], t["state"]) for t in outcome.result["tasks"]] == [
        ("bad", "failed"),
        ("fix", "succeeded"),
    ]
    assert children.requests[-1][2] == {"cmd": "boom"}
    unhandled = {
        "chain": [
            {"name": "bad", "ref": "tests.fail", "on-success": "x"},
            {"name": "x", "ref": "tests.echo"},
        ]
    }
    assert run_chain(tmp_path, unhandled, ScriptedChildren(children.behaviours)).status == S.FAILED


def test_a_timed_out_last_task_ends_the_chain_timeout(tmp_path: Path) -> None:
    children = ScriptedChildren({"tests.slow": time_out})
    outcome = run_chain(tmp_path, {"chain": [{"name": "slow", "ref": "tests.slow"}]}, children)
    assert outcome.status == S.TIMEOUT
    assert outcome.result["tasks"][0]["state"] == "timeout"


def test_publish_runs_for_failed_tasks_too(tmp_path: Path) -> None:
    children = ScriptedChildren({"tests.fail": fail})
    document = {
        "chain": [{"name": "bad", "ref": "tests.fail", "publish": {"why": "{{ bad.stderr }}"}}]
    }
    outcome = run_chain(tmp_path, document, children)
    assert outcome.status == S.FAILED
    assert outcome.result["published"] == {"why": "boom"}


def test_loop_protection_stops_at_the_default_limit(tmp_path: Path) -> None:
    children = ScriptedChildren({"tests.echo": echo})
    loop = {
        "chain": [
            {"name": "ping", "ref": "tests.echo", "on-success": "pong"},
            {"name": "pong", "ref": "tests.echo", "on-success": "ping"},
        ]
    }
    outcome = run_chain(tmp_path, loop, children)
    assert outcome.status == S.FAILED
    assert len(outcome.result["tasks"]) == 1000
    assert len(children.requests) == 1000
    assert outcome.result["error"] == (
        'The chain ran 1000 tasks, the most max_task_runs allows; stopped before task "ping".'
    )


def test_loop_protection_limit_is_a_runner_parameter(tmp_path: Path) -> None:
    children = ScriptedChildren({"tests.echo": echo})
    loop = {"chain": [{"name": "again", "ref": "tests.echo", "on-success": "again"}]}
    outcome = run_chain(tmp_path, loop, children, runner_parameters={"max_task_runs": 3})
    assert outcome.status == S.FAILED
    assert len(children.requests) == 3


@pytest.mark.parametrize(
    ("task", "error"),
    [
        (
            {"name": "a", "ref": "tests.echo", "params": {"cmd": "{{ nothing_here }}"}},
            'Failed to run task "a". Parameter rendering failed.',
        ),
        (
            {"name": "a", "ref": "tests.gone"},
            'Failed to run task "a". Action with reference "tests.gone" doesn\'t exist.',
        ),
        (
            {"name": "a", "ref": "tests.echo", "publish": {"x": "{{ a.missing_key }}"}},
            'Failed rendering the "publish" of task "a".',
        ),
    ],
)
def test_errors_fail_the_chain_with_result_error(
    tmp_path: Path, task: dict[str, Any], error: str
) -> None:
    children = ScriptedChildren({"tests.echo": echo})
    document = {
        "chain": [{**task, "on-failure": "fallback"}, {"name": "fallback", "ref": "tests.echo"}]
    }
    outcome = run_chain(tmp_path, document, children)
    assert outcome.status == S.FAILED
    assert outcome.result["error"].startswith(error)
    assert "fallback" not in [t["name"] for t in outcome.result["tasks"]]


def test_a_refused_request_is_a_failed_task_that_follows_on_failure(tmp_path: Path) -> None:
    children = ScriptedChildren({"tests.echo": echo})
    document = {
        "chain": [
            {"name": "a", "ref": "tests.refused", "on-failure": "b"},
            {"name": "b", "ref": "tests.echo", "params": {"cmd": "{{ a.error }}"}},
        ]
    }
    outcome = run_chain(tmp_path, document, children)
    assert outcome.status == S.SUCCEEDED
    first = outcome.result["tasks"][0]
    assert first["state"] == "failed" and first["execution_id"] is None
    assert first["result"] == {"error": "Failed running task \"a\". 'cmd' is a required property"}
    assert children.requests[0][2]["cmd"] == first["result"]["error"]


def test_bad_vars_fail_the_chain(tmp_path: Path) -> None:
    document = {
        "vars": {"x": "{{ undefined_thing }}"},
        "chain": [{"name": "a", "ref": "tests.echo"}],
    }
    children = ScriptedChildren({"tests.echo": echo})
    outcome = run_chain(tmp_path, document, children)
    assert outcome.status == S.FAILED
    assert outcome.result["error"].startswith("Failed initializing ``vars`` in chain.")
    assert children.requests == []


def test_display_published_false_leaves_published_out(tmp_path: Path) -> None:
    document = {"chain": [{"name": "a", "ref": "tests.echo", "publish": {"v": "1"}}]}
    outcome = run_chain(
        tmp_path,
        document,
        ScriptedChildren({"tests.echo": echo}),
        runner_parameters={"display_published": False},
    )
    assert outcome.status == S.SUCCEEDED
    assert "published" not in outcome.result


def test_pre_run_refuses_without_children_or_entry_point(tmp_path: Path) -> None:
    request = RunnerRequest(
        execution_id="p", action_ref="tests.chain", pack="tests", runner_type="action-chain"
    )
    with pytest.raises(ValidationError, match="needs child executions"):
        ActionChainRunner(request, lambda kind, data: None).pre_run()
    services = RunnerServices(children=ScriptedChildren({}))
    with pytest.raises(ValidationError, match="has no entry point"):
        ActionChainRunner(request, lambda kind, data: None, services).pre_run()


class BlockingChildren(ScriptedChildren):
    """Children that run until canceled."""

    def __init__(self) -> None:
        super().__init__({"tests.block": echo})
        self.started = threading.Event()
        self.stopped = threading.Event()

    def wait_settled(self, execution_id: str) -> tuple[ExecutionStatus, Any]:
        self.started.set()
        assert self.stopped.wait(10), "the child was never canceled"
        return S.CANCELED, {"message": "Action canceled by user."}

    def cancel(self, execution_id: str) -> None:
        super().cancel(execution_id)
        self.stopped.set()


def test_cancel_stops_the_running_child_and_ends_canceled(tmp_path: Path) -> None:
    children = BlockingChildren()
    path = tmp_path / "chain.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "chain": [
                    {"name": "block", "ref": "tests.block", "on-success": "after"},
                    {"name": "after", "ref": "tests.block"},
                ]
            }
        )
    )
    request = RunnerRequest(
        execution_id="p",
        action_ref="tests.chain",
        pack="tests",
        runner_type="action-chain",
        entry_point_path=path,
    )
    runner = ActionChainRunner(request, lambda kind, data: None, RunnerServices(children=children))
    runner.pre_run()
    outcomes: list[RunnerOutcome] = []
    thread = threading.Thread(target=lambda: outcomes.append(runner.run()))
    thread.start()
    assert children.started.wait(5)
    runner.cancel()
    thread.join(5)
    assert outcomes and outcomes[0].status == S.CANCELED
    assert children.canceled == ["child-1"]
    assert [task["name"] for task in outcomes[0].result["tasks"]] == ["block"]


def test_a_canceled_task_ends_the_chain_canceled_without_publishing(tmp_path: Path) -> None:
    def canceled(parameters: Mapping[str, Any]) -> tuple[ExecutionStatus, Any]:
        return S.CANCELED, {"message": "Action canceled by user.", "user": "tester"}

    children = ScriptedChildren({"tests.canceled": canceled, "tests.echo": echo})
    document = {
        "chain": [
            {
                "name": "a",
                "ref": "tests.canceled",
                "publish": {"out": "{{ a.stdout }}"},
                "on-failure": "b",
            },
            {"name": "b", "ref": "tests.echo"},
        ]
    }
    outcome = run_chain(tmp_path, document, children)
    assert outcome.status == S.CANCELED
    assert [task["state"] for task in outcome.result["tasks"]] == ["canceled"]
    assert outcome.result["published"] == {}
    assert len(children.requests) == 1


def test_tasks_carry_their_notify_or_the_chains_unless_skipped(tmp_path: Path) -> None:
    own = {"on-complete": {"routes": ["task"]}}
    chain_notify = {"on-failure": {"routes": ["chain"]}}
    document = {
        "chain": [
            {"name": "a", "ref": "tests.echo", "notify": own, "on-success": "b"},
            {"name": "b", "ref": "tests.echo", "on-success": "c"},
            {"name": "c", "ref": "tests.echo", "notify": own},
        ]
    }
    children = ScriptedChildren({"tests.echo": echo})
    outcome = run_chain(
        tmp_path,
        document,
        children,
        runner_parameters={"skip_notify": ["c"]},
        notify=chain_notify,
    )
    assert outcome.status == S.SUCCEEDED
    assert children.notify == {
        "a": (own, False),
        "b": (chain_notify, False),
        "c": (None, True),
    }
