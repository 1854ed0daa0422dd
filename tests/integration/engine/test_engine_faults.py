"""The engine's lifecycle promises for local-shell-cmd actions, on MariaDB and RabbitMQ.

The scheduler and the action runner run as threads of the test process here; the tests that
need real processes (signals, policies across runners, st2ctl) are in
``test_engine_process_faults.py`` and ``test_st2ctl_services.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poundcake.db.session import unit_of_work
from poundcake.engine.executions.service import cancel_execution
from tests.integration.support.engine_stack import EngineStack, engine_stack
from tests.integration.support.shell_engine import (
    ONE_SECOND_TIMEOUT,
    SHELL,
    ActionProcesses,
    action_processes,
    add_sleeping_action,
    output_rows,
    output_text,
    register_shell_actions,
    statuses,
)
from tests.integration.support.shell_helpers import process_is_alive, wait_until_gone

CANCELED_BY_USER = {"message": "Action canceled by user.", "user": "tester"}


@pytest.fixture
def stack(tmp_path: Path, scratch_database: str) -> Iterator[EngineStack]:
    with engine_stack(tmp_path, scratch_database) as running:
        register_shell_actions(running.runtime)
        yield running


@pytest.fixture
def actions(tmp_path: Path) -> Iterator[ActionProcesses]:
    with action_processes(tmp_path) as tracker:
        yield tracker


def cancel(stack: EngineStack, execution_id: str) -> str:
    """Cancel as ``DELETE /executions/{id}`` does; return the status the request left."""
    with unit_of_work(stack.runtime.sessions) as session:
        outcome = cancel_execution(session, execution_id, user="tester")
    assert outcome.refused is None
    return outcome.execution.status


def test_a_command_succeeds_through_every_status(stack: EngineStack) -> None:
    stack.start_scheduler()
    stack.start_runner()
    done = stack.wait(stack.request(SHELL, {"cmd": "echo hi"}).execution_id, timeout=30)
    assert done.status == "succeeded"
    assert done.result == {
        "failed": False,
        "succeeded": True,
        "return_code": 0,
        "stdout": "hi",
        "stderr": "",
    }
    assert statuses(done) == ["requested", "scheduled", "running", "succeeded"]
    assert done.end_timestamp is not None and done.end_timestamp >= done.start_timestamp


def test_a_failing_command_fails_with_its_exit_code(stack: EngineStack) -> None:
    stack.start_scheduler()
    stack.start_runner()
    requested = stack.request(SHELL, {"cmd": "echo partial; echo broken >&2; exit 3"})
    done = stack.wait(requested.execution_id, timeout=30)
    assert done.status == "failed"
    assert done.result == {
        "failed": True,
        "succeeded": False,
        "return_code": 3,
        "stdout": "partial",
        "stderr": "broken",
    }
    assert statuses(done) == ["requested", "scheduled", "running", "failed"]


@pytest.mark.parametrize("prelude", ["", "trap '' TERM; "], ids=["plain", "ignores-sigterm"])
def test_a_timeout_ends_the_execution_and_kills_its_process_group(
    stack: EngineStack, actions: ActionProcesses, prelude: str
) -> None:
    stack.start_scheduler()
    stack.start_runner()
    child_file, shell_file = actions.pid_file(), actions.pid_file()
    cmd = f"{prelude}sleep 30 & echo $! > {child_file}; echo $$ > {shell_file}; wait"
    requested = stack.request(ONE_SECOND_TIMEOUT, {"cmd": cmd})
    child, shell = actions.read(child_file), actions.read(shell_file)
    done = stack.wait(requested.execution_id, timeout=15)
    assert done.status == "timeout"
    assert done.result["error"] == "Action failed to complete in 1 seconds"
    assert done.result["return_code"] == -9
    assert done.result["succeeded"] is False
    assert statuses(done) == ["requested", "scheduled", "running", "timeout"]
    assert wait_until_gone(shell, 5), "the action's shell outlived its timeout"
    assert wait_until_gone(child, 5), "the action's child process outlived its timeout"


def test_an_action_that_outlives_its_lease_keeps_running(stack: EngineStack) -> None:
    assert stack.config.actionrunner.lease_seconds == 3
    stack.start_scheduler()
    stack.start_runner()
    requested = stack.request(SHELL, {"cmd": "sleep 8; echo still mine"})
    done = stack.wait(requested.execution_id, timeout=30)
    assert done.status == "succeeded", done.result
    assert done.result["stdout"] == "still mine"
    assert statuses(done) == ["requested", "scheduled", "running", "succeeded"]


def test_output_is_stored_while_the_action_runs(stack: EngineStack, tmp_path: Path) -> None:
    stack.start_scheduler()
    stack.start_runner()
    # The action prints "second" only once the test has seen "first" stored (or after a minute,
    # saying so): the first line can only be seen while the action runs, at any machine speed.
    gate = tmp_path / "seen-first"
    cmd = (
        "echo first; echo warning >&2; opened=no; "
        f"for _ in $(seq 1200); do if [ -e {gate} ]; then opened=yes; break; fi; sleep 0.05; "
        'done; [ "$opened" = yes ] || echo gate-timeout; echo second'
    )
    requested = stack.request(SHELL, {"cmd": cmd})
    stack.wait(requested.execution_id, {"running"}, timeout=15)
    deadline = time.monotonic() + 60
    while "first" not in output_text(stack, requested.execution_id, "stdout"):
        assert time.monotonic() < deadline, "the first line was not stored within 60 s"
        time.sleep(0.05)
    status_when_seen = stack.execution(requested.execution_id).status
    gate.touch()
    stored_early = output_rows(stack, requested.execution_id)
    assert ("stdout", "first\n") in stored_early, (
        f"the first line was not stored while the action ran (stored: {stored_early})"
    )
    assert status_when_seen == "running"

    done = stack.wait(requested.execution_id, timeout=15)
    assert done.status == "succeeded"
    assert done.result["stdout"] == "first\nsecond"
    assert output_text(stack, requested.execution_id, "stdout") == "first\nsecond\n"
    assert output_text(stack, requested.execution_id, "stderr") == "warning\n"


def test_cancel_while_requested_never_runs_the_action(stack: EngineStack, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    requested = stack.request(SHELL, {"cmd": f"touch {marker}"})
    assert cancel(stack, requested.execution_id) == "canceled"
    stack.start_scheduler()
    stack.start_runner()
    later = stack.request(SHELL, {"cmd": "echo later"})
    assert stack.wait(later.execution_id, timeout=30).status == "succeeded"
    canceled = stack.execution(requested.execution_id)
    assert canceled.status == "canceled"
    assert canceled.result == CANCELED_BY_USER
    assert statuses(canceled) == ["requested", "canceled"]
    assert not marker.exists(), "a canceled execution ran"


def test_cancel_while_scheduled_never_runs_the_action(stack: EngineStack, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    stack.start_scheduler()
    requested = stack.request(SHELL, {"cmd": f"touch {marker}"})
    stack.wait(requested.execution_id, {"scheduled"}, timeout=15)
    assert cancel(stack, requested.execution_id) == "canceled"
    stack.start_runner()
    later = stack.request(SHELL, {"cmd": "echo later"})
    assert stack.wait(later.execution_id, timeout=30).status == "succeeded"
    canceled = stack.execution(requested.execution_id)
    assert canceled.status == "canceled"
    assert canceled.result == CANCELED_BY_USER
    assert statuses(canceled) == ["requested", "scheduled", "canceled"]
    assert not marker.exists(), "a canceled execution ran"


def test_cancel_while_delayed_by_a_policy_never_runs_the_action(stack: EngineStack) -> None:
    add_sleeping_action(stack.runtime, "tests.limited", 2, threshold=1, behaviour="delay")
    stack.start_scheduler()
    stack.start_runner()
    first = stack.request("tests.limited")
    stack.wait(first.execution_id, {"running"}, timeout=15)
    second = stack.request("tests.limited")
    stack.wait(second.execution_id, {"delayed"}, timeout=15)
    assert cancel(stack, second.execution_id) == "canceled"
    assert stack.wait(first.execution_id, timeout=15).status == "succeeded"
    third = stack.request("tests.limited")
    assert stack.wait(third.execution_id, timeout=15).status == "succeeded"
    canceled = stack.execution(second.execution_id)
    assert canceled.status == "canceled"
    assert canceled.result == CANCELED_BY_USER
    assert statuses(canceled) == ["requested", "delayed", "canceled"]


def test_cancel_while_running_kills_the_action_promptly(
    stack: EngineStack, actions: ActionProcesses
) -> None:
    stack.start_scheduler()
    stack.start_runner()
    child_file = actions.pid_file()
    requested = stack.request(SHELL, {"cmd": f"sleep 30 & echo $! > {child_file}; wait"})
    stack.wait(requested.execution_id, {"running"}, timeout=15)
    child = actions.read(child_file)
    assert process_is_alive(child)
    assert cancel(stack, requested.execution_id) == "canceling"
    done = stack.wait(requested.execution_id, timeout=6)
    assert done.status == "canceled"
    assert statuses(done) == ["requested", "scheduled", "running", "canceling", "canceled"]
    assert wait_until_gone(child, 5), "the canceled action's process still runs"
    shown = {"message": done.result.get("message"), "user": done.result.get("user")}
    assert shown == CANCELED_BY_USER, f"result of the canceled execution: {done.result}"
