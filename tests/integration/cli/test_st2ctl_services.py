"""``st2ctl start|status|stop`` run the engine's services as detached processes that do work."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from poundcake.config import load_st2_config
from poundcake.db.migrate import setup_engine_schema
from poundcake.engine.runtime import make_runtime
from tests.integration.support.commands import CommandResult, command_environment, run_command
from tests.integration.support.engine_stack import EngineStack, rabbitmq_vhost, write_st2_conf
from tests.integration.support.shell_engine import SHELL, register_shell_actions
from tests.integration.support.shell_helpers import process_is_alive, wait_until_gone
from tests.integration.support.st2cli import free_port

SERVICES = (
    "st2api",
    "st2auth",
    "st2stream",
    "st2scheduler",
    "st2workflowengine",
    "st2rulesengine",
    "st2notifier",
    "st2timersengine",
    "st2garbagecollector",
    "st2sensorcontainer",
    "st2actionrunner.1",
    "st2actionrunner.2",
)
_STATUS_LINE = re.compile(r"^(\S+) PID: (\d+)$", re.MULTILINE)


class St2ctl:
    """``st2ctl`` as an operator runs it, against one st2.conf."""

    def __init__(self, config_path: Path, tmp_path: Path) -> None:
        self.config_path = config_path
        self.env = command_environment(tmp_path)
        self.run_dir = tmp_path / "run"

    def __call__(self, command: str) -> CommandResult:
        return run_command("st2ctl", command, "--config-file", str(self.config_path), env=self.env)

    def kill_leftovers(self) -> None:
        """SIGKILL services whose pid file survived and whose command line names our config."""
        for pid_file in self.run_dir.glob("*.pid"):
            text = pid_file.read_text().strip()
            if not text.isdigit():
                continue
            pid = int(text)
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(self.config_path).encode() in cmdline and process_is_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def st2ctl(tmp_path: Path, scratch_database: str) -> Iterator[St2ctl]:
    with rabbitmq_vhost() as url:
        extra = (
            f"workers = 2\n\n[system]\nrun_dir = {tmp_path / 'run'}\n"
            f"log_dir = {tmp_path / 'logs'}\n\n[api]\nport = {free_port()}\n\n"
            f"[auth]\nport = {free_port()}\n\n[stream]\nport = {free_port()}\n"
        )
        path = write_st2_conf(tmp_path / "st2.conf", scratch_database, url, extra)
        config = load_st2_config(path)
        setup_engine_schema(config)
        runtime = make_runtime(config, pool_size=2)
        try:
            register_shell_actions(runtime)
        finally:
            runtime.close()
        command = St2ctl(path, tmp_path)
        try:
            yield command
        finally:
            command("stop")
            command.kill_leftovers()


def service_pids(status: CommandResult) -> dict[str, int]:
    return {name: int(pid) for name, pid in _STATUS_LINE.findall(status.stdout)}


def test_start_status_work_and_stop(st2ctl: St2ctl, tmp_path: Path) -> None:
    started = st2ctl("start")
    assert started.returncode == 0, started.stdout + started.stderr
    status = st2ctl("status")
    assert status.returncode == 0, status.stdout
    pids = service_pids(status)
    assert sorted(pids) == sorted(SERVICES), status.stdout
    assert all(process_is_alive(pid) for pid in pids.values())

    config = load_st2_config(st2ctl.config_path)
    stack = EngineStack(config, st2ctl.config_path, make_runtime(config, pool_size=2))
    try:
        requested = stack.request(SHELL, {"cmd": "echo through st2ctl"})
        done = stack.wait(requested.execution_id, timeout=30)
    finally:
        stack.shutdown()
    assert done.status == "succeeded", done.result
    assert done.result["stdout"] == "through st2ctl"

    again = st2ctl("start")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("already running") == len(SERVICES), again.stdout
    assert service_pids(st2ctl("status")) == pids

    restarted = st2ctl("restart")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert all(wait_until_gone(pid, 5) for pid in pids.values())
    new_pids = service_pids(st2ctl("status"))
    assert sorted(new_pids) == sorted(SERVICES)
    assert not set(new_pids.values()) & set(pids.values())
    pids = new_pids

    stopped = st2ctl("stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert stopped.stdout.count("stopped.") == len(SERVICES), stopped.stdout
    assert all(wait_until_gone(pid, 5) for pid in pids.values())
    after = st2ctl("status")
    assert after.returncode == 3, after.stdout
    for name in SERVICES:
        assert f"{name} is not running." in after.stdout
    assert not list((tmp_path / "run").glob("*.pid"))
