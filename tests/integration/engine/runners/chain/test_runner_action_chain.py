"""ActionChain workflows through the real scheduler and action runner, on MariaDB and RabbitMQ."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poundcake.db.session import unit_of_work
from poundcake.engine.actionrunner.children import ExecutionChildren
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.service import cancel_execution
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.exceptions import NotFoundError, ValidationError
from tests import factories
from tests.integration.support.engine_stack import EngineStack, engine_stack

CHAINS = {
    "three.yaml": """
chain:
  - name: greet
    ref: tests.shell
    params:
      cmd: "echo hello-{{ who }}"
    publish:
      greeting: "{{ greet.stdout }}"
    on-success: repeat
  - name: repeat
    ref: tests.shell
    params:
      cmd: "echo {{ greeting }} again"
    on-success: finish
  - name: finish
    ref: tests.noop
""",
    "handled.yaml": """
chain:
  - name: break
    ref: tests.shell
    params:
      cmd: "echo broken >&2; exit 3"
    on-success: unreachable
    on-failure: recover
  - name: unreachable
    ref: tests.noop
  - name: recover
    ref: tests.shell
    params:
      cmd: "echo recovered from {{ break.return_code }}"
""",
    "unhandled.yaml": """
chain:
  - name: break
    ref: tests.shell
    params:
      cmd: "exit 1"
    on-success: after
  - name: after
    ref: tests.noop
""",
    "slow.yaml": """
chain:
  - name: sleep
    ref: tests.shell
    params:
      cmd: "sleep 30"
    on-success: after
  - name: after
    ref: tests.noop
""",
    "loop.yaml": """
chain:
  - name: ping
    ref: tests.noop
    on-success: pong
  - name: pong
    ref: tests.noop
    on-success: ping
""",
    "missing.yaml": """
chain:
  - name: first
    ref: tests.noop
    on-success: second
  - name: second
    ref: tests.does_not_exist
""",
    "bad_link.yaml": """
chain:
  - name: first
    ref: tests.noop
    on-success: nowhere
""",
}


@pytest.fixture
def stack(tmp_path: Path, scratch_database: str) -> Iterator[EngineStack]:
    actions = tmp_path / "pack" / "actions"
    actions.mkdir(parents=True)
    for name, text in CHAINS.items():
        (actions / name).write_text(text)
    with engine_stack(tmp_path, scratch_database) as running:
        with unit_of_work(running.runtime.sessions) as session:
            for runner in ("noop", "local-shell-cmd", "action-chain"):
                factories.runner_type(session, runner)
            factories.pack(session, "tests", path=str(tmp_path / "pack"))
            factories.action(session, "tests.noop", "noop")
            factories.action(session, "tests.shell", "local-shell-cmd")
            for name in CHAINS:
                factories.action(
                    session,
                    f"tests.{name.removesuffix('.yaml')}",
                    "action-chain",
                    {"who": {"type": "string", "default": "ann"}, "max_task_runs": {"default": 5}},
                    entry_point=name,
                )
        running.start_scheduler()
        running.start_runner(concurrency=4)
        yield running


def children_of(stack: EngineStack, execution_id: str) -> list[ExecutionDB]:
    return [stack.execution(child) for child in stack.execution(execution_id).children]


def test_three_tasks_pass_a_published_value_along(stack: EngineStack) -> None:
    requested = stack.request("tests.three", {"who": "bob"})
    done = stack.wait(requested.execution_id)
    assert done.status == "succeeded", done.result
    tasks = done.result["tasks"]
    assert [(task["name"], task["state"]) for task in tasks] == [
        ("greet", "succeeded"),
        ("repeat", "succeeded"),
        ("finish", "succeeded"),
    ]
    assert tasks[1]["result"]["stdout"] == "hello-bob again"
    assert done.result["published"] == {"greeting": "hello-bob"}
    assert done.children == [task["execution_id"] for task in tasks]

    children = children_of(stack, requested.execution_id)
    assert [child.action for child in children] == ["tests.shell", "tests.shell", "tests.noop"]
    assert [child.context["chain"]["name"] for child in children] == ["greet", "repeat", "finish"]
    for child in children:
        assert child.parent == requested.execution_id
        assert child.status == "succeeded"
        assert child.context["parent"]["execution_id"] == requested.execution_id
        assert child.context["parent"]["user"] == "tester"
        assert child.context["user"] == "tester"
        assert child.start_timestamp >= done.start_timestamp
    assert children[1].parameters == {"cmd": "echo hello-bob again"}


def test_a_failure_with_on_failure_is_handled(stack: EngineStack) -> None:
    requested = stack.request("tests.handled")
    done = stack.wait(requested.execution_id)
    assert done.status == "succeeded", done.result
    assert [(task["name"], task["state"]) for task in done.result["tasks"]] == [
        ("break", "failed"),
        ("recover", "succeeded"),
    ]
    assert done.result["tasks"][0]["result"]["stderr"] == "broken"
    assert done.result["tasks"][1]["result"]["stdout"] == "recovered from 3"
    assert [child.status for child in children_of(stack, requested.execution_id)] == [
        "failed",
        "succeeded",
    ]


def test_a_failure_without_on_failure_fails_the_chain(stack: EngineStack) -> None:
    requested = stack.request("tests.unhandled")
    done = stack.wait(requested.execution_id)
    assert done.status == "failed"
    assert [(task["name"], task["state"]) for task in done.result["tasks"]] == [("break", "failed")]
    assert len(done.children) == 1


def test_cancel_of_a_running_chain_cancels_its_child(stack: EngineStack) -> None:
    requested = stack.request("tests.slow")
    deadline = time.monotonic() + 30
    while not stack.execution(requested.execution_id).children:
        assert time.monotonic() < deadline, "the chain never started its first task"
        time.sleep(0.05)
    child_id = stack.execution(requested.execution_id).children[0]
    stack.wait(child_id, {"running"})
    started = time.monotonic()
    with unit_of_work(stack.runtime.sessions) as session:
        outcome = cancel_execution(session, requested.execution_id, user="tester")
    assert outcome.refused is None
    done = stack.wait(requested.execution_id, timeout=15)
    assert done.status == "canceled"
    assert time.monotonic() - started < 15
    assert stack.execution(child_id).status == "canceled"
    assert done.children == [child_id]
    assert [task["name"] for task in done.result["tasks"]] == ["sleep"]
    assert done.result["tasks"][0]["state"] == "canceled"


def test_loop_protection_ends_the_chain_failed(stack: EngineStack) -> None:
    requested = stack.request("tests.loop")
    done = stack.wait(requested.execution_id)
    assert done.status == "failed"
    assert len(done.result["tasks"]) == 5
    assert len(done.children) == 5
    assert done.result["error"] == (
        'The chain ran 5 tasks, the most max_task_runs allows; stopped before task "pong".'
    )


def test_an_action_that_does_not_exist_fails_the_chain(stack: EngineStack) -> None:
    requested = stack.request("tests.missing")
    done = stack.wait(requested.execution_id)
    assert done.status == "failed"
    assert done.result["error"].startswith(
        'Failed to run task "second". Action with reference "tests.does_not_exist" doesn\'t exist.'
    )
    assert [task["name"] for task in done.result["tasks"]] == ["first"]


def test_an_unknown_next_task_fails_before_anything_runs(stack: EngineStack) -> None:
    requested = stack.request("tests.bad_link")
    done = stack.wait(requested.execution_id)
    assert done.status == "failed"
    assert (
        'Unable to find node with name "nowhere" referenced in "on-success"'
        in (done.result["error"])
    )
    assert done.children == []


def test_a_child_of_a_canceled_parent_is_canceled_by_wait(stack: EngineStack) -> None:
    parent = stack.request("tests.shell", {"cmd": "sleep 30"})
    stack.wait(parent.execution_id, {"running"})
    with unit_of_work(stack.runtime.sessions) as session:
        cancel_execution(session, parent.execution_id, user="tester")
    children = ExecutionChildren(
        stack.runtime.sessions,
        stack.runtime.publisher,
        parent_execution_id=parent.execution_id,
        user="tester",
        cancel_grace_seconds=10,
    )
    child_id = children.request("tests.shell", {"cmd": "sleep 30"}, {"chain": {"name": "late"}})
    started = time.monotonic()
    status, _ = children.wait(child_id)
    assert status == ExecutionStatus.CANCELED
    assert time.monotonic() - started < 10
    child = stack.wait(child_id)
    assert child.status == "canceled"
    assert child.parent == parent.execution_id
    assert child.context["chain"] == {"name": "late"}
    assert stack.execution(parent.execution_id).children == [child_id]


def test_child_requests_refuse_unknown_actions_and_bad_parameters(stack: EngineStack) -> None:
    parent = stack.request("tests.noop")
    children = ExecutionChildren(
        stack.runtime.sessions,
        stack.runtime.publisher,
        parent_execution_id=parent.execution_id,
        user="tester",
    )
    with pytest.raises(NotFoundError) as missing:
        children.request("tests.nope", {}, {})
    assert str(missing.value) == 'Action "tests.nope" cannot be found.'
    with pytest.raises(ValidationError) as refused:
        children.request("tests.shell", {"bogus": 1}, {})
    assert str(refused.value) == "Additional properties are not allowed ('bogus' was unexpected)"
    assert stack.wait(parent.execution_id).children == []
