"""Command lines the remote shell runners send, and how host outcomes add up."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.remote.commands import (
    announced,
    export_prefix,
    kill_group_command,
    parse_hosts,
    remote_script_path,
    remove_directory_command,
    shell_command,
    split_host_port,
)
from poundcake.engine.runners.remote.host import HostOutcome
from poundcake.engine.runners.remote.runner import overall_status
from poundcake.engine.runners.shell.process import Ending
from poundcake.engine.runners.shell.results import shell_result
from poundcake.exceptions import ValidationError


def test_hosts_are_comma_separated_with_blanks_ignored() -> None:
    assert parse_hosts(" web1, web2:2222 ,,[::1]:22 ") == ["web1", "web2:2222", "[::1]:22"]
    assert parse_hosts("") == []


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("web1", ("web1", 22)),
        ("web1:2222", ("web1", 2222)),
        ("[::1]", ("::1", 22)),
        ("[fe80::1]:2200", ("fe80::1", 2200)),
        ("fe80::1", ("fe80::1", 22)),
    ],
)
def test_host_and_port_are_split(host: str, expected: tuple[str, int]) -> None:
    assert split_host_port(host, 22) == expected


def test_a_non_numeric_port_is_refused() -> None:
    with pytest.raises(ValidationError):
        split_host_port("web1:ssh", 22)


def test_environment_is_exported_sorted_and_quoted() -> None:
    assert export_prefix({"B": "two words", "A": "it's"}) == ("export A='it'\"'\"'s' B='two words'")
    assert export_prefix({}) == ""


def test_a_plain_command_line_exports_changes_directory_and_runs() -> None:
    line = shell_command(
        "echo hi", env={"X": "1"}, cwd="/srv/my app", sudo=False, sudo_password=False
    )
    assert line == "export X=1 && cd '/srv/my app' && {\necho hi\n}"


def test_the_setup_applies_to_every_part_of_a_command_with_background_jobs() -> None:
    line = shell_command(
        'sleep 0 & echo "$X"; pwd', env={"X": "set"}, cwd="/", sudo=False, sudo_password=False
    )
    completed = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True)
    assert completed.stdout == "set\n/\n"


def test_without_setup_the_command_is_sent_as_is() -> None:
    assert shell_command("a & b", env={}, cwd=None, sudo=False, sudo_password=False) == "a & b"


def test_sudo_wraps_the_whole_line_in_bash_c() -> None:
    line = shell_command("id -u", env={"X": "$(x)"}, cwd="/tmp", sudo=True, sudo_password=False)
    assert line.startswith("sudo -E -- bash -c ")
    assert shlex.split(line)[-1] == "export X='$(x)' && cd /tmp && {\nid -u\n}"
    with_password = shell_command("id", env={}, cwd=None, sudo=True, sudo_password=True)
    assert with_password == "sudo -S -E -- bash -c id"


def test_the_announced_command_reports_its_pid_on_stderr_and_keeps_the_exit_code() -> None:
    completed = subprocess.run(
        ["bash", "-c", announced("echo out; exit 5", "MARK:")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 5
    assert completed.stdout == "out\n"
    assert completed.stderr.startswith("MARK:")
    assert completed.stderr.removeprefix("MARK:").strip().isdigit()


def test_the_kill_command_targets_the_group() -> None:
    command = kill_group_command(4242)
    assert "kill -TERM -- -4242" in command
    assert "kill -KILL -- -4242" in command


def test_the_remote_script_lives_in_a_directory_of_its_own() -> None:
    assert remote_script_path("/tmp", "abc123", "/packs/x/actions/run.sh") == (
        "/tmp/abc123",
        "/tmp/abc123/run.sh",
    )
    assert remove_directory_command("/tmp/a b") == "rm -rf -- '/tmp/a b'"


@pytest.mark.parametrize("execution_id", ["..", "../etc", "a/b", "", "x y"])
def test_an_execution_id_that_could_escape_the_directory_is_refused(execution_id: str) -> None:
    with pytest.raises(ValidationError):
        remote_script_path("/tmp", execution_id, "run.sh")


def _outcome(ending: Ending, return_code: int) -> HostOutcome:
    return HostOutcome("h", ending, shell_result(return_code, "", ""))


def test_the_run_succeeds_only_if_every_host_succeeded() -> None:
    ok = _outcome(Ending.EXITED, 0)
    failed = _outcome(Ending.EXITED, 1)
    assert overall_status([ok, ok], canceled=False) is ExecutionStatus.SUCCEEDED
    assert overall_status([ok, failed], canceled=False) is ExecutionStatus.FAILED
    assert overall_status([], canceled=False) is ExecutionStatus.FAILED


def test_timeout_and_cancel_win_over_other_outcomes() -> None:
    ok = _outcome(Ending.EXITED, 0)
    timed_out = _outcome(Ending.TIMED_OUT, -9)
    assert overall_status([ok, timed_out], canceled=False) is ExecutionStatus.TIMEOUT
    assert overall_status([ok, timed_out], canceled=True) is ExecutionStatus.CANCELED
