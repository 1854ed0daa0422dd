"""The engine's promises when its processes run for real: policies across several runners, a
runner killed with SIGKILL, and a runner stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy as sa

from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.states import COMPLETED
from tests.integration.support.engine_stack import EngineStack, engine_stack
from tests.integration.support.shell_engine import (
    SHELL,
    ActionProcesses,
    action_processes,
    add_sleeping_action,
    lease_owner,
    log_tail,
    register_shell_actions,
    statuses,
)
from tests.integration.support.shell_helpers import process_is_alive, wait_until_gone

LIMITED = "tests.limited"
EXECUTIONS = 4


@pytest.fixture
def stack(tmp_path: Path, scratch_database: str) -> Iterator[EngineStack]:
    with engine_stack(tmp_path, scratch_database) as running:
        register_shell_actions(running.runtime)
        yield running


@pytest.fixture
def actions(tmp_path: Path) -> Iterator[ActionProcesses]:
    with action_processes(tmp_path) as tracker:
        yield tracker


def exit_code(process: subprocess.Popen[bytes], log: Path, seconds: float) -> int:
    """Wait for a spawned service to exit; fail with its log if it does not."""
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"process {process.pid} still runs {seconds}s after the signal:\n{log_tail(log)}"
        ) from None


def sample_running(stack: EngineStack, ids: list[str], seconds: float) -> list[int]:
    """Count the running executions among ``ids`` every 50 ms until all are completed."""
    counts: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with stack.runtime.sessions() as session:
            found = list(
                session.scalars(sa.select(ExecutionDB.status).where(ExecutionDB.id.in_(ids)))
            )
        counts.append(found.count("running"))
        if len(found) == len(ids) and all(status in COMPLETED for status in found):
            return counts
        time.sleep(0.05)
    raise AssertionError(f"executions still in flight after {seconds}s: {found}")


def running_spans(executions: list[ExecutionDB]) -> list[tuple[str, str]]:
    """(entered running, completed) for each execution, from its log, earliest first."""
    spans = []
    for execution in executions:
        entered = next(
            entry["timestamp"] for entry in execution.log if entry["status"] == "running"
        )
        spans.append((str(entered), str(execution.log[-1]["timestamp"])))
    return sorted(spans)


def test_concurrency_policy_holds_across_two_runner_processes(
    stack: EngineStack, tmp_path: Path
) -> None:
    add_sleeping_action(stack.runtime, LIMITED, 1, threshold=1, behaviour="delay")
    logs = [tmp_path / name for name in ("scheduler.log", "runner1.log", "runner2.log")]
    stack.spawn("st2scheduler", logs[0])
    runners = [stack.spawn("st2actionrunner", log) for log in logs[1:]]
    ids = [stack.request(LIMITED).execution_id for _ in range(EXECUTIONS)]

    counts = sample_running(stack, ids, seconds=45)

    assert max(counts) == 1, f"running counts sampled every 50 ms: {counts}"
    done = [stack.execution(execution_id) for execution_id in ids]
    assert [execution.status for execution in done] == ["succeeded"] * EXECUTIONS
    spans = running_spans(done)
    for (_, previous_end), (start, _) in pairwise(spans):
        assert start >= previous_end, f"two executions ran at once: {spans}"
    assert all(runner.poll() is None for runner in runners), log_tail(logs[1])


def test_concurrency_policy_cancel_cancels_the_excess(stack: EngineStack, tmp_path: Path) -> None:
    add_sleeping_action(stack.runtime, LIMITED, 2, threshold=1, behaviour="cancel")
    stack.spawn("st2scheduler", tmp_path / "scheduler.log")
    stack.spawn("st2actionrunner", tmp_path / "runner1.log")
    stack.spawn("st2actionrunner", tmp_path / "runner2.log")
    ids = [stack.request(LIMITED).execution_id for _ in range(EXECUTIONS)]

    done = [stack.wait(execution_id, timeout=30) for execution_id in ids]

    assert sorted(execution.status for execution in done) == ["canceled"] * 3 + ["succeeded"]
    for execution in done:
        if execution.status == "canceled":
            assert statuses(execution) == ["requested", "canceled"]
            assert "concurrency" in execution.result["message"]


def test_a_runner_killed_with_sigkill_has_its_execution_abandoned(
    stack: EngineStack, tmp_path: Path, actions: ActionProcesses
) -> None:
    runner_log = tmp_path / "runner.log"
    runner = stack.spawn("st2actionrunner", runner_log)
    stack.start_scheduler()
    pid_file = actions.pid_file()
    requested = stack.request(SHELL, {"cmd": f"echo $$ > {pid_file}; exec sleep 60"})
    stack.wait(requested.execution_id, {"running"}, timeout=30)
    actions.read(pid_file)
    owner = lease_owner(stack, requested.liveaction_id)
    assert owner is not None and f":{runner.pid}:" in owner

    os.killpg(runner.pid, signal.SIGKILL)
    assert exit_code(runner, runner_log, 5) == -signal.SIGKILL

    abandoned = stack.wait(requested.execution_id, timeout=20)
    assert abandoned.status == "abandoned"
    assert statuses(abandoned) == ["requested", "scheduled", "running", "abandoned"]
    assert owner in abandoned.result["error"]

    stack.spawn("st2actionrunner", tmp_path / "fresh-runner.log")
    after = stack.request(SHELL, {"cmd": "echo after"})
    finished = stack.wait(after.execution_id, timeout=30)
    assert finished.status == "succeeded"
    assert finished.result["stdout"] == "after"
    assert stack.execution(requested.execution_id).status == "abandoned"


def test_sigterm_lets_a_short_action_finish_and_exits_zero(
    stack: EngineStack, tmp_path: Path, actions: ActionProcesses
) -> None:
    runner_log = tmp_path / "runner.log"
    runner = stack.spawn("st2actionrunner", runner_log)
    stack.start_scheduler()
    pid_file = actions.pid_file()
    requested = stack.request(SHELL, {"cmd": f"echo $$ > {pid_file}; sleep 1; echo done"})
    actions.read(pid_file)

    runner.send_signal(signal.SIGTERM)

    assert exit_code(runner, runner_log, 15) == 0, log_tail(runner_log)
    done = stack.wait(requested.execution_id, timeout=5)
    assert done.status == "succeeded", done.result
    assert done.result["stdout"] == "done"


def test_sigterm_abandons_an_action_that_outlives_the_grace_period(
    stack: EngineStack, tmp_path: Path, actions: ActionProcesses
) -> None:
    runner_log = tmp_path / "runner.log"
    runner = stack.spawn("st2actionrunner", runner_log)
    stack.start_scheduler()
    pid_file = actions.pid_file()
    requested = stack.request(SHELL, {"cmd": f"echo $$ > {pid_file}; exec sleep 30"})
    sleeper = actions.read(pid_file)
    stack.wait(requested.execution_id, {"running"}, timeout=15)

    runner.send_signal(signal.SIGTERM)

    assert exit_code(runner, runner_log, 15) == 0, log_tail(runner_log)
    done = stack.wait(requested.execution_id, timeout=5)
    assert done.status == "abandoned", done.result
    assert statuses(done) == ["requested", "scheduled", "running", "abandoned"]
    assert f":{runner.pid}:" in done.result["error"]
    assert wait_until_gone(sleeper, 5), "the abandoned action's process still runs"
    assert not process_is_alive(sleeper)
