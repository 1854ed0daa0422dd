"""Helpers for engine tests that run local-shell-cmd actions through real engine processes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from poundcake.db.session import unit_of_work
from poundcake.engine.executions.models import ExecutionDB, ExecutionOutputDB, LiveActionDB
from poundcake.engine.runtime import EngineRuntime
from tests import factories
from tests.integration.support.engine_stack import EngineStack
from tests.integration.support.shell_helpers import process_is_alive, read_pid

SHELL = "tests.shell"
"""A local-shell-cmd action that takes ``cmd`` (and ``timeout``) as live parameters."""

ONE_SECOND_TIMEOUT = "tests.one_second"
"""A local-shell-cmd action whose ``timeout`` defaults to 1 second."""


def register_shell_actions(runtime: EngineRuntime) -> None:
    """Register the local-shell-cmd runner type, the ``tests`` pack and its shell actions."""
    with unit_of_work(runtime.sessions) as session:
        factories.runner_type(session, "local-shell-cmd")
        factories.pack(session, "tests")
        factories.action(session, SHELL, "local-shell-cmd")
        factories.action(
            session, ONE_SECOND_TIMEOUT, "local-shell-cmd", {"timeout": {"default": 1}}
        )


def add_sleeping_action(
    runtime: EngineRuntime, ref: str, seconds: float, *, threshold: int, behaviour: str
) -> None:
    """A local-shell-cmd action that sleeps, under an ``action.concurrency`` policy."""
    with unit_of_work(runtime.sessions) as session:
        factories.action(session, ref, "local-shell-cmd", {"cmd": {"default": f"sleep {seconds}"}})
        factories.concurrency_policy(session, ref, threshold, behaviour)


def statuses(execution: ExecutionDB) -> list[str]:
    """The statuses an execution went through, from its log."""
    return [str(entry["status"]) for entry in execution.log]


def output_rows(stack: EngineStack, execution_id: str) -> list[tuple[str, str]]:
    """The execution's stored output as (output_type, data), in the order it was stored."""
    with stack.runtime.sessions() as session:
        rows = session.execute(
            sa.select(ExecutionOutputDB.output_type, ExecutionOutputDB.data)
            .where(ExecutionOutputDB.execution_id == execution_id)
            .order_by(ExecutionOutputDB.id)
        ).all()
    return [(row.output_type, row.data) for row in rows]


def output_text(stack: EngineStack, execution_id: str, output_type: str) -> str:
    """Everything stored for one stream of the execution."""
    return "".join(data for kind, data in output_rows(stack, execution_id) if kind == output_type)


def lease_owner(stack: EngineStack, liveaction_id: str) -> str | None:
    """The runner holding the live action's lease, if any."""
    with stack.runtime.sessions() as session:
        return session.scalar(
            sa.select(LiveActionDB.lease_owner).where(LiveActionDB.id == liveaction_id)
        )


def log_tail(path: Path, lines: int = 40) -> str:
    """The end of a process log, for assertion messages."""
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class ActionProcesses:
    """Pids the test's actions wrote to files; whatever still runs at the end is killed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pids: list[int] = []
        self._count = 0

    def pid_file(self) -> Path:
        """A fresh path for an action to write its pid to."""
        self._count += 1
        return self.directory / f"action-{self._count}.pid"

    def read(self, path: Path, seconds: float = 15.0) -> int:
        """Wait for the action to write its pid, remember it and return it."""
        pid = read_pid(path, seconds)
        self._pids.append(pid)
        return pid

    def kill_leftovers(self) -> list[int]:
        """SIGKILL every remembered process that still runs ``sleep``; return their pids."""
        killed = []
        for pid in self._pids:
            if process_is_alive(pid) and _runs_sleep(pid):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return killed


def _runs_sleep(pid: int) -> bool:
    try:
        return b"sleep" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@contextmanager
def action_processes(directory: Path) -> Iterator[ActionProcesses]:
    """Track the test's action processes and kill the ones left running."""
    tracker = ActionProcesses(directory)
    try:
        yield tracker
    finally:
        tracker.kill_leftovers()


def wait_for(what: str, check: Callable[[], bool], seconds: float) -> None:
    """Poll ``check()`` every 50 ms until it is true, or fail naming what never happened."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds}s")
        time.sleep(0.05)
