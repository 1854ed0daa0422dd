"""The remote shell runners against a real OpenSSH server on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import Runner, RunnerOutcome, RunnerRequest
from poundcake.engine.runners.remote.commands import REMOTE_KILL_GRACE_SECONDS
from poundcake.engine.runners.remote.runner import (
    CANCEL_WAIT_SECONDS,
    RemoteShellCommandRunner,
    RemoteShellScriptRunner,
)
from tests.integration.support.shell_helpers import (
    RecordingSink,
    process_is_alive,
    read_pid,
    wait_until_gone,
)
from tests.integration.support.sshd import SshServer, running_sshd

EXECUTION_ID = "6650f0c1a2b3c4d5e6f7081a"
HOSTILE = 'it\'s "double" $(touch pwned1) `touch pwned2`; touch pwned3 && echo no\nnext | line'


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def connection_parameters(server: SshServer, **extra: Any) -> dict[str, Any]:
    return {
        "hosts": server.host,
        "port": server.port,
        "username": server.username,
        "private_key": server.private_key,
        "cwd": "/tmp",
        **extra,
    }


def command_runner(
    server: SshServer, cmd: str, sink: RecordingSink, *, timeout: float | None = None, **extra: Any
) -> RemoteShellCommandRunner:
    request = RunnerRequest(
        execution_id=EXECUTION_ID,
        action_ref="core.remote",
        pack="core",
        runner_type="remote-shell-cmd",
        runner_parameters=connection_parameters(server, cmd=cmd, **extra),
        timeout=timeout,
    )
    return RemoteShellCommandRunner(request, sink)


def run(runner: Runner) -> RunnerOutcome:
    runner.pre_run()
    outcome = runner.run()
    runner.post_run(outcome)
    return outcome


def run_command(server: SshServer, cmd: str, **options: Any) -> tuple[RunnerOutcome, RecordingSink]:
    sink = RecordingSink()
    return run(command_runner(server, cmd, sink, **options)), sink


def test_a_command_succeeds_with_a_result_per_host(ssh_server: SshServer) -> None:
    outcome, sink = run_command(
        ssh_server, 'echo hello; echo warning >&2; echo "$ST2_ACTION_EXECUTION_ID"'
    )

    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result == {
        "127.0.0.1": {
            "failed": False,
            "succeeded": True,
            "return_code": 0,
            "stdout": f"hello\n{EXECUTION_ID}",
            "stderr": "warning",
        }
    }
    assert [data for kind, data in sink.calls if kind == "stdout"] == [
        "hello\n",
        f"{EXECUTION_ID}\n",
    ]
    assert sink.text("stderr") == "warning\n"


def test_a_non_zero_exit_code_fails(ssh_server: SshServer) -> None:
    outcome, _ = run_command(ssh_server, "echo '{\"partial\": true}'; exit 5")

    assert outcome.status is ExecutionStatus.FAILED
    host = outcome.result["127.0.0.1"]
    assert (host["return_code"], host["failed"], host["succeeded"]) == (5, True, False)
    assert host["stdout"] == {"partial": True}


def test_env_and_cwd_apply_and_hostile_values_stay_data(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    outcome, _ = run_command(
        ssh_server,
        'sleep 0 & pwd; printf "%s" "$GREETING"',
        cwd=str(tmp_path),
        env={"GREETING": HOSTILE},
    )

    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["127.0.0.1"]["stdout"] == f"{tmp_path}\n{HOSTILE}"
    assert list(tmp_path.iterdir()) == []


def test_a_private_key_file_path_logs_in_too(ssh_server: SshServer) -> None:
    outcome, _ = run_command(ssh_server, "echo ok", private_key=str(ssh_server.private_key_path))

    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["127.0.0.1"]["stdout"] == "ok"


def test_a_refused_login_fails_that_host(ssh_server: SshServer) -> None:
    outcome, _ = run_command(ssh_server, "echo never", password="wrong")

    assert outcome.status is ExecutionStatus.FAILED
    host = outcome.result["127.0.0.1"]
    assert host["return_code"] == 255
    assert host["error"].startswith("Failed connecting to host 127.0.0.1.")


def test_every_host_gets_a_result_and_one_bad_host_fails_the_run(ssh_server: SshServer) -> None:
    hosts = f"127.0.0.1,localhost:{ssh_server.port},127.0.0.2:1"
    outcome, _ = run_command(ssh_server, "echo up", hosts=hosts, parallel=True)

    assert outcome.status is ExecutionStatus.FAILED
    assert set(outcome.result) == {"127.0.0.1", "localhost", "127.0.0.2"}
    assert outcome.result["127.0.0.1"]["stdout"] == "up"
    assert outcome.result["localhost"]["stdout"] == "up"
    assert outcome.result["127.0.0.2"]["succeeded"] is False
    assert "Failed connecting to host 127.0.0.2." in outcome.result["127.0.0.2"]["error"]


def test_serial_runs_on_two_hosts_succeed(ssh_server: SshServer) -> None:
    hosts = f"127.0.0.1,localhost:{ssh_server.port}"
    outcome, _ = run_command(ssh_server, "echo up", hosts=hosts, parallel=False)

    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert {host: result["stdout"] for host, result in outcome.result.items()} == {
        "127.0.0.1": "up",
        "localhost": "up",
    }


def test_a_bastion_host_proxies_the_connection(ssh_server: SshServer) -> None:
    outcome, _ = run_command(
        ssh_server, "echo via bastion", bastion_host=f"127.0.0.1:{ssh_server.port}"
    )

    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["127.0.0.1"]["stdout"] == "via bastion"


def test_timeout_kills_the_remote_process_group(ssh_server: SshServer, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    started = time.monotonic()

    outcome, sink = run_command(
        ssh_server, f"sleep 300 & echo $! > {pid_file}; echo started; wait", timeout=2
    )

    elapsed = time.monotonic() - started
    assert outcome.status is ExecutionStatus.TIMEOUT
    host = outcome.result["127.0.0.1"]
    assert host["return_code"] == -9
    assert host["error"] == "Action failed to complete in 2 seconds"
    assert host["stdout"] == "started"
    assert sink.text("stdout") == "started\n"
    assert wait_until_gone(read_pid(pid_file)), "the remote child survived the timeout"
    assert elapsed < 2 + REMOTE_KILL_GRACE_SECONDS + 5


def test_cancel_mid_run_returns_canceled_and_kills_the_remote_group(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    sink = RecordingSink()
    runner = command_runner(
        ssh_server, f"sleep 300 & echo $! > {pid_file}; echo started; wait", sink, timeout=60
    )
    outcomes: list[RunnerOutcome] = []
    thread = threading.Thread(target=lambda: outcomes.append(run(runner)), daemon=True)
    thread.start()
    sink.wait_for("stdout", "started")
    child = read_pid(pid_file)
    assert process_is_alive(child)

    canceled_at = time.monotonic()
    runner.cancel()
    runner.cancel()
    thread.join(REMOTE_KILL_GRACE_SECONDS + 10)

    assert not thread.is_alive(), "run() did not return after cancel()"
    assert time.monotonic() - canceled_at < REMOTE_KILL_GRACE_SECONDS + 5
    assert outcomes[0].status is ExecutionStatus.CANCELED
    assert outcomes[0].result["127.0.0.1"]["succeeded"] is False
    assert wait_until_gone(child), "the remote child survived the cancel"


def test_cancel_while_a_host_never_answers_returns_promptly(ssh_server: SshServer) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        runner = command_runner(
            ssh_server, "echo never", RecordingSink(), timeout=120, hosts=f"127.0.0.1:{port}"
        )
        outcomes: list[RunnerOutcome] = []
        thread = threading.Thread(target=lambda: outcomes.append(run(runner)), daemon=True)
        thread.start()
        connection, _ = silent.accept()
        with connection:
            canceled_at = time.monotonic()
            runner.cancel()
            thread.join(CANCEL_WAIT_SECONDS + 5)

    assert not thread.is_alive(), "run() did not return after cancel()"
    assert time.monotonic() - canceled_at < CANCEL_WAIT_SECONDS + 2
    assert outcomes[0].status is ExecutionStatus.CANCELED
    assert outcomes[0].result["127.0.0.1"]["error"] == "Action canceled."


def test_cancel_before_run_connects_nowhere(ssh_server: SshServer, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    runner = command_runner(ssh_server, f"touch {marker}", RecordingSink())
    runner.cancel()

    outcome = run(runner)

    assert outcome.status is ExecutionStatus.CANCELED
    assert not marker.exists()


ARGS_SCRIPT = """#!/bin/bash
printf '%s\\0' "$@" > "$ARGS_FILE"
echo "script in $(dirname "$0")"
pwd
"""


def script_runner(
    server: SshServer,
    script: Path,
    remote_dir: Path,
    action_parameters: dict[str, Any],
    parameter_schema: dict[str, Any],
    *,
    timeout: float | None = None,
    **extra: Any,
) -> RemoteShellScriptRunner:
    request = RunnerRequest(
        execution_id=EXECUTION_ID,
        action_ref="examples.remote_script",
        pack="examples",
        runner_type="remote-shell-script",
        entry_point=script.name,
        entry_point_path=script,
        runner_parameters=connection_parameters(server, dir=str(remote_dir), **extra),
        action_parameters=action_parameters,
        parameter_schema=parameter_schema,
        timeout=timeout,
    )
    return RemoteShellScriptRunner(request, RecordingSink())


def test_a_script_is_uploaded_run_with_its_arguments_and_removed(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    script = tmp_path / "show_args.sh"
    script.write_text(ARGS_SCRIPT)
    script.chmod(0o644)
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    args_file = tmp_path / "args"
    schema = {
        "first": {"type": "string", "position": 0},
        "second": {"type": "boolean", "position": 1},
        "note": {"type": "string"},
        "hosts_list": {"type": "array"},
    }
    parameters = {"first": HOSTILE, "second": True, "note": HOSTILE, "hosts_list": ["a", "b"]}
    runner = script_runner(
        ssh_server,
        script,
        remote_dir,
        parameters,
        schema,
        cwd=str(work_dir),
        env={"ARGS_FILE": str(args_file)},
    )

    outcome = run(runner)

    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["127.0.0.1"]["stdout"] == (
        f"script in {remote_dir / EXECUTION_ID}\n{work_dir}"
    )
    received = args_file.read_bytes().decode().split("\0")[:-1]
    assert received == [f"--note={HOSTILE}", "--hosts_list=a,b", HOSTILE, "1"]
    assert list(remote_dir.iterdir()) == [], "the uploaded script was left behind"
    assert list(work_dir.iterdir()) == []


def test_a_timed_out_script_is_killed_and_still_removed(
    ssh_server: SshServer, tmp_path: Path
) -> None:
    script = tmp_path / "slow.sh"
    script.write_text('#!/bin/bash\nsleep 300 & echo $! > "$PID_FILE"\nwait\n')
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    pid_file = tmp_path / "child.pid"
    runner = script_runner(
        ssh_server, script, remote_dir, {}, {}, timeout=2, env={"PID_FILE": str(pid_file)}
    )

    outcome = run(runner)

    assert outcome.status is ExecutionStatus.TIMEOUT
    assert outcome.result["127.0.0.1"]["return_code"] == -9
    assert wait_until_gone(read_pid(pid_file))
    assert list(remote_dir.iterdir()) == []
