"""The local shell runners against real subprocesses."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from poundcake.engine.executions.results import EncodedText
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import Runner, RunnerOutcome, RunnerRequest
from poundcake.engine.runners.shell.process import KILL_GRACE_SECONDS
from poundcake.engine.runners.shell.runner import LocalShellCommandRunner, LocalShellScriptRunner
from poundcake.exceptions import ValidationError
from tests.integration.support.shell_helpers import (
    RecordingSink,
    process_is_alive,
    read_pid,
    wait_until_gone,
)

EXECUTION_ID = "6650f0c1a2b3c4d5e6f70819"
HOSTILE = 'it\'s "double" $(touch pwned1) `touch pwned2`; touch pwned3 && echo no\nnext | line'
EIGHT_MB = 8 * 1024 * 1024


def command_request(cmd: str, *, timeout: float | None = None, **parameters: Any) -> RunnerRequest:
    return RunnerRequest(
        execution_id=EXECUTION_ID,
        action_ref="core.local",
        pack="core",
        runner_type="local-shell-cmd",
        runner_parameters={"cmd": cmd, **parameters},
        timeout=timeout,
    )


def script_request(
    script: Path,
    action_parameters: dict[str, Any],
    parameter_schema: dict[str, Any],
    **parameters: Any,
) -> RunnerRequest:
    return RunnerRequest(
        execution_id=EXECUTION_ID,
        action_ref="examples.script",
        pack="examples",
        runner_type="local-shell-script",
        entry_point=script.name,
        entry_point_path=script,
        runner_parameters=parameters,
        action_parameters=action_parameters,
        parameter_schema=parameter_schema,
    )


def run(runner: Runner) -> RunnerOutcome:
    runner.pre_run()
    outcome = runner.run()
    runner.post_run(outcome)
    return outcome


def run_command(cmd: str, **options: Any) -> tuple[RunnerOutcome, RecordingSink]:
    sink = RecordingSink()
    return run(LocalShellCommandRunner(command_request(cmd, **options), sink)), sink


def start_in_thread(runner: Runner) -> tuple[threading.Thread, list[RunnerOutcome]]:
    outcomes: list[RunnerOutcome] = []
    thread = threading.Thread(target=lambda: outcomes.append(run(runner)), daemon=True)
    thread.start()
    return thread, outcomes


def test_a_successful_command_streams_and_returns_stackstorms_result() -> None:
    outcome, sink = run_command("echo hello; echo warning >&2; echo bye")

    assert outcome.status is ExecutionStatus.SUCCEEDED
    assert outcome.result == {
        "failed": False,
        "succeeded": True,
        "return_code": 0,
        "stdout": "hello\nbye",
        "stderr": "warning",
    }
    assert [data for kind, data in sink.calls if kind == "stdout"] == ["hello\n", "bye\n"]
    assert sink.text("stderr") == "warning\n"


def test_a_non_zero_exit_code_fails_with_that_code() -> None:
    outcome, _ = run_command("echo partial; exit 3")

    assert outcome.status is ExecutionStatus.FAILED
    assert outcome.result["return_code"] == 3
    assert outcome.result["failed"] is True
    assert outcome.result["stdout"] == "partial"


def test_json_output_is_parsed() -> None:
    outcome, _ = run_command("""echo '{"a": 1, "b": [true, null]}'; echo '[1, 2]' >&2""")

    assert outcome.result["stdout"] == {"a": 1, "b": [True, None]}
    assert outcome.result["stderr"] == [1, 2]


def test_env_and_cwd_apply_and_the_service_environment_does_not_leak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POUNDCAKE_TEST_SERVICE_SECRET", "must-not-leak")
    outcome, _ = run_command(
        'pwd; echo "$GREETING"; echo "$ST2_ACTION_PACK_NAME $ST2_ACTION_EXECUTION_ID"; env',
        cwd=str(tmp_path),
        env={"GREETING": "hi there $(touch pwned)"},
    )

    lines = outcome.result["stdout"].splitlines()
    assert lines[0] == str(tmp_path)
    assert lines[1] == "hi there $(touch pwned)"
    assert lines[2] == f"core {EXECUTION_ID}"
    assert "POUNDCAKE_TEST_SERVICE_SECRET=must-not-leak" not in lines
    assert any(line.startswith("PATH=") for line in lines)
    assert not (tmp_path / "pwned").exists()


def test_sudo_as_root_runs_the_command_directly() -> None:
    outcome, _ = run_command("id -u", sudo=True)

    assert outcome.status is ExecutionStatus.SUCCEEDED
    assert outcome.result["stdout"] in {"0", 0}


def test_a_missing_cwd_fails_without_raising(tmp_path: Path) -> None:
    outcome, _ = run_command("true", cwd=str(tmp_path / "absent"))

    assert outcome.status is ExecutionStatus.FAILED
    assert "absent" in outcome.result["error"]


def test_local_shell_cmd_refuses_an_empty_command() -> None:
    runner = LocalShellCommandRunner(command_request("  "), RecordingSink())
    with pytest.raises(ValidationError):
        runner.pre_run()


ARGS_SCRIPT = """#!/bin/bash
printf '%s\\0' "$@" > "$ARGS_FILE"
echo "ran in $(pwd)"
"""


@pytest.mark.parametrize("executable", [True, False], ids=["executable", "not-executable"])
def test_script_arguments_arrive_intact_and_unexecuted(tmp_path: Path, executable: bool) -> None:
    script = tmp_path / "show_args.sh"
    script.write_text(ARGS_SCRIPT)
    script.chmod(0o755 if executable else 0o644)
    args_file = tmp_path / "args"
    schema = {
        "first": {"type": "string", "position": 0},
        "second": {"type": "integer", "position": 1},
        "third": {"type": "string", "position": 2},
        "flag": {"type": "boolean"},
        "off": {"type": "boolean"},
        "note": {"type": "string"},
        "items": {"type": "array"},
        "data": {"type": "object"},
    }
    parameters = {
        "first": HOSTILE,
        "second": 7,
        "flag": True,
        "off": False,
        "note": HOSTILE,
        "items": ["a b", "c"],
        "data": {"k": "v w"},
    }
    request = script_request(
        script, parameters, schema, cwd=str(tmp_path), env={"ARGS_FILE": str(args_file)}
    )

    outcome = run(LocalShellScriptRunner(request, RecordingSink()))

    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["stdout"] == f"ran in {tmp_path}"
    received = args_file.read_bytes().decode().split("\0")[:-1]
    assert received == [
        "--flag",
        f"--note={HOSTILE}",
        "--items=a b,c",
        '--data={"k":"v w"}',
        HOSTILE,
        "7",
        "",
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["args", "show_args.sh"]


def test_kwarg_op_changes_the_named_argument_prefix(tmp_path: Path) -> None:
    script = tmp_path / "echo_args.sh"
    script.write_text('#!/bin/sh\necho "$@"\n')
    script.chmod(0o755)
    request = script_request(script, {"name": "x"}, {}, kwarg_op="-")

    outcome = run(LocalShellScriptRunner(request, RecordingSink()))

    assert outcome.result["stdout"] == "-name=x"


def test_a_script_without_a_shebang_or_exec_bit_runs_with_bash(tmp_path: Path) -> None:
    script = tmp_path / "plain"
    script.write_text('echo "$BASH_VERSION" | cut -c1\nexit 4\n')
    script.chmod(0o644)

    outcome = run(LocalShellScriptRunner(script_request(script, {}, {}), RecordingSink()))

    assert outcome.status is ExecutionStatus.FAILED
    assert outcome.result["return_code"] == 4
    assert outcome.result["stdout"] != ""


def test_local_shell_script_refuses_a_missing_entry_point(tmp_path: Path) -> None:
    runner = LocalShellScriptRunner(script_request(tmp_path / "nope.sh", {}, {}), RecordingSink())
    with pytest.raises(ValidationError):
        runner.pre_run()


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    polite, stubborn = tmp_path / "polite.pid", tmp_path / "stubborn.pid"
    cmd = (
        f"sleep 300 & echo $! > {polite}; "
        f"(trap '' TERM; exec sleep 300) & echo $! > {stubborn}; "
        "echo started; wait"
    )
    started = time.monotonic()

    outcome, sink = run_command(cmd, timeout=1)

    elapsed = time.monotonic() - started
    assert outcome.status is ExecutionStatus.TIMEOUT
    assert outcome.result["return_code"] == -9
    assert outcome.result["error"] == "Action failed to complete in 1 seconds"
    assert outcome.result["stdout"] == "started"
    assert sink.text("stdout") == "started\n"
    assert wait_until_gone(read_pid(polite)), "the grandchild survived the timeout"
    assert wait_until_gone(read_pid(stubborn)), "a grandchild ignoring SIGTERM survived"
    assert elapsed < 1 + KILL_GRACE_SECONDS + 5


def test_the_timeout_runner_parameter_applies_when_the_request_has_none() -> None:
    request = RunnerRequest(
        execution_id=EXECUTION_ID,
        action_ref="core.local",
        pack="core",
        runner_type="local-shell-cmd",
        runner_parameters={"cmd": "sleep 30", "timeout": 1},
    )

    outcome = run(LocalShellCommandRunner(request, RecordingSink()))

    assert outcome.status is ExecutionStatus.TIMEOUT
    assert outcome.result["error"] == "Action failed to complete in 1 seconds"


def test_cancel_mid_run_kills_the_group_and_returns_canceled_promptly(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    sink = RecordingSink()
    runner = LocalShellCommandRunner(
        command_request(f"sleep 300 & echo $! > {pid_file}; echo started; wait", timeout=60),
        sink,
    )
    thread, outcomes = start_in_thread(runner)
    sink.wait_for("stdout", "started")
    child = read_pid(pid_file)
    assert process_is_alive(child)

    canceled_at = time.monotonic()
    runner.cancel()
    runner.cancel()
    thread.join(KILL_GRACE_SECONDS + 5)

    assert not thread.is_alive(), "run() did not return after cancel()"
    assert time.monotonic() - canceled_at < KILL_GRACE_SECONDS + 3
    assert outcomes[0].status is ExecutionStatus.CANCELED
    assert wait_until_gone(child), "the child survived the cancel"


def test_cancel_before_run_never_starts_the_process(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    runner = LocalShellCommandRunner(command_request(f"touch {marker}"), RecordingSink())
    runner.cancel()

    outcome = run(runner)

    assert outcome.status is ExecutionStatus.CANCELED
    assert not marker.exists()


def test_eight_megabytes_on_both_streams_are_streamed_whole() -> None:
    line = "0123456789" * 9 + "abcdefghi"  # 99 characters, 100 bytes with the newline
    cmd = f"(yes {line} | head -c {EIGHT_MB}) & (yes {line} | head -c {EIGHT_MB} >&2) & wait"

    outcome, sink = run_command(cmd, timeout=120)

    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result.get("error")
    for stream in ("stdout", "stderr"):
        pieces = [data for kind, data in sink.calls if kind == stream]
        assert sum(len(piece) for piece in pieces) == EIGHT_MB
        assert max(len(piece) for piece in pieces) == len(line) + 1
        # Kept as its UTF-8 bytes, not a str.
        assert isinstance(outcome.result[stream], EncodedText)
        assert str(outcome.result[stream]) == ((line + "\n") * (EIGHT_MB // 100 + 1))[:EIGHT_MB]
