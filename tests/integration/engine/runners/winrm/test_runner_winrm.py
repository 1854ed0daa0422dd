"""The WinRM runners through a real engine and the official ``st2`` CLI, against a local
WS-Management peer (``tests/integration/support/wsman.py``) that records what it is asked to run.

The engine allows loopback with ``[winrm_runner] allowed_networks``; one test shows the runner
refusing the peer without it. The ``windows`` fixture pack has actions shaped like StackStorm's
examples pack (``tests/fixtures/packs/st2_shapes``).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import RunnerRequest
from poundcake.engine.runners.http.guard import NetworkPolicy
from poundcake.engine.runners.winrm.runner import (
    WinRmCommandRunner,
    WinRmPsCommandRunner,
    WinRmPsScriptRunner,
)
from tests.integration.support.pack_actions import engine_api, output, run_async, wait_for
from tests.integration.support.shell_helpers import RecordingSink
from tests.integration.support.st2cli import RunningEngine, St2, logged_in, running_engine
from tests.integration.support.wsman import (
    PASSWORD,
    TERMINATE,
    Command,
    Reply,
    WsManPeer,
    connection_parameters,
    running_wsman,
)
from tests.paths import FIXTURE_PACKS

PACKS = FIXTURE_PACKS / "st2_shapes"
LOOPBACK = NetworkPolicy.parse("127.0.0.0/8", setting="[winrm_runner] allowed_networks")
FINISHED = {"succeeded", "failed", "timeout", "canceled", "abandoned"}


@pytest.fixture(scope="module")
def peer() -> Iterator[WsManPeer]:
    with running_wsman() as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_peer(peer: WsManPeer) -> WsManPeer:
    peer.reset()
    return peer


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    extra = (
        f"[winrm_runner]\nallowed_networks = 127.0.0.0/8\n\n[content]\npacks_base_paths = {PACKS}\n"
    )
    with running_engine(tmp_path_factory.mktemp("winrm"), extra_conf=extra) as running:
        yield running


@pytest.fixture(scope="module")
def st2(engine: RunningEngine, tmp_path_factory: pytest.TempPathFactory) -> St2:
    return logged_in(engine, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def api(engine: RunningEngine, st2: St2) -> Iterator[httpx.Client]:
    with engine_api(engine, st2) as client:
        yield client


def login(peer: WsManPeer, **extra: Any) -> list[str]:
    """``st2 run`` arguments that reach the peer with Basic authentication."""
    return [f"{name}={value}" for name, value in connection_parameters(peer, **extra).items()]


def run(st2: St2, ref: str, *arguments: str) -> dict[str, Any]:
    """Run an action with ``st2 run -j``; the password must not show in what the CLI printed."""
    result = st2("run", ref, *arguments, "-j", timeout=120)
    assert PASSWORD not in output(result), "the password is in the CLI's output"
    document: dict[str, Any] = json.loads(result.stdout)
    assert result.returncode == (0 if document["status"] == "succeeded" else 1), output(result)
    return document


def shown(st2: St2, execution_id: str) -> str:
    """What ``st2 execution get`` prints, as JSON; it must not hold the password."""
    result = st2("execution", "get", execution_id, "-j")
    assert result.returncode == 0, output(result)
    assert PASSWORD not in output(result), "the password is in st2 execution get"
    return result.stdout


def test_winrm_cmd_runs_in_a_shell_with_env_cwd_and_utf8_and_streams_its_output(
    st2: St2, api: httpx.Client, peer: WsManPeer
) -> None:
    peer.responder = lambda command: Reply(
        stdout="Windows IP Configuration\r\n   Host Name . : wïn-1\r\n".encode(),
        stderr=b"a warning\r\n",
        lines_every=0.3,
    )
    execution = run(
        st2,
        "core.winrm_cmd",
        *login(peer),
        "cmd=ipconfig /all",
        'env={"GREETING": "hi there", "COUNT": 3}',
        "cwd=C:\\Temp",
    )

    assert execution["status"] == "succeeded", execution["result"]
    assert execution["result"] == {
        "failed": False,
        "succeeded": True,
        "return_code": 0,
        "stdout": "Windows IP Configuration\r\n   Host Name . : wïn-1\r\n",
        "stderr": "a warning\r\n",
    }
    command = peer.last_command()
    shell = peer.shell_of(command)
    assert command.command_line == "ipconfig /all"
    assert command.receives >= 2, "the output came in more than one Receive"
    assert shell.environment == {"GREETING": "hi there", "COUNT": "3"}
    assert shell.working_directory == "C:\\Temp"
    assert shell.options["WINRS_CODEPAGE"] == "65001"
    assert command.signals == [TERMINATE] and shell.deleted
    stored = api.get(f"/executions/{execution['id']}/output", params={"output_type": "stdout"})
    assert stored.text == "Windows IP Configuration\r\n   Host Name . : wïn-1\r\n"
    stored_errors = api.get(f"/executions/{execution['id']}/output?output_type=stderr")
    assert stored_errors.text == "a warning\r\n"
    shown(st2, execution["id"])


def test_a_non_zero_exit_code_fails_with_stdout_parsed_and_stderr(
    st2: St2, peer: WsManPeer
) -> None:
    peer.responder = lambda command: Reply(
        stdout=b'{"disk": "C:", "free": 0}\r\n', stderr=b"disk full\r\n", exit_code=3
    )
    execution = run(st2, "core.winrm_cmd", *login(peer), "cmd=check-disk.exe C:")

    assert execution["status"] == "failed"
    assert execution["result"] == {
        "failed": True,
        "succeeded": False,
        "return_code": 3,
        "stdout": {"disk": "C:", "free": 0},
        "stderr": "disk full\r\n",
    }


POWERSHELL_ERROR = (
    b"#< CLIXML\r\n"
    b'<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    b"<S S=\"Error\">Get-Service : Cannot find any service with service name 'nope'."
    b"_x000D__x000A_</S></Objs>"
)


def test_winrm_ps_cmd_sends_encoded_powershell_and_reads_its_error_stream(
    st2: St2, api: httpx.Client, peer: WsManPeer
) -> None:
    peer.responder = lambda command: Reply(stderr=POWERSHELL_ERROR, exit_code=1)
    script = "Get-Service -Name 'nope' | Select-Object Status, \"Name\"; $x = `$y"
    execution = run(st2, "core.winrm_ps_cmd", *login(peer), f"cmd={script}")

    command = peer.last_command()
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    assert command.command_line == f"powershell -encodedcommand {encoded}"
    assert command.script == script
    assert execution["status"] == "failed"
    message = "Get-Service : Cannot find any service with service name 'nope'."
    assert execution["result"]["stderr"] == message
    assert execution["result"]["return_code"] == 1
    stored = api.get(f"/executions/{execution['id']}/output?output_type=stderr")
    assert stored.text == message


def test_winrm_ps_script_passes_parameters_as_stackstorm_formats_them(
    st2: St2, peer: WsManPeer
) -> None:
    peer.responder = lambda command: Reply(stdout=b'{"name":"Spooler"}\r\n')
    execution = run(
        st2,
        "windows.set_service",
        *login(peer),
        'name=Print "Spooler" $svc',
        "restart=true",
        "depends_on=RPCSS,DcomLaunch",
        'settings={"delay": 5, "note": null}',
    )

    assert execution["status"] == "succeeded", execution["result"]
    assert execution["result"]["stdout"] == {"name": "Spooler"}
    script = (PACKS / "windows" / "actions" / "scripts" / "set_service.ps1").read_text()
    assert peer.last_command().script == (
        f"& {{{script}}} "
        '-start_mode "Automatic" -restart $true -depends_on @("RPCSS", "DcomLaunch") '
        '-settings @{"delay" = 5; "note" = $null} -note $null '
        '"Print `"Spooler`" `$svc" "3"'
    )


def test_example_shaped_actions_register_and_run(
    st2: St2, api: httpx.Client, peer: WsManPeer
) -> None:
    for ref, runner in (
        ("windows.ipconfig", "winrm-cmd"),
        ("windows.env_json", "winrm-ps-cmd"),
        ("windows.uptime", "winrm-ps-script"),
        ("core.winrm_cmd", "winrm-cmd"),
        ("core.winrm_ps_cmd", "winrm-ps-cmd"),
    ):
        action = api.get(f"/actions/{ref}")
        assert action.status_code == 200, action.text
        assert action.json()["runner_type"] == runner

    peer.responder = lambda command: Reply(
        stdout=b'{"Key":"POUNDCAKE_WINRM_TEST","Value":"set by the action"}\r\n'
    )
    execution = run(st2, "windows.env_json", *login(peer))
    assert execution["result"]["stdout"]["Value"] == "set by the action"
    command = peer.last_command()
    assert command.script == "Get-Item Env:POUNDCAKE_WINRM_TEST | ConvertTo-Json -Compress"
    assert peer.shell_of(command).environment == {"POUNDCAKE_WINRM_TEST": "set by the action"}

    assert run(st2, "windows.ipconfig", *login(peer))["status"] == "succeeded"
    assert peer.last_command().command_line == "ipconfig /all"
    refused = st2("run", "windows.ipconfig", *login(peer), "cmd=format C:")
    assert refused.returncode != 0
    assert "immutable" in output(refused).lower()

    uptime = (PACKS / "windows" / "actions" / "scripts" / "uptime.ps1").read_text()
    assert run(st2, "windows.uptime", *login(peer))["status"] == "succeeded"
    assert peer.last_command().script == uptime


def test_wrong_credentials_fail_and_the_password_stays_secret(
    st2: St2, api: httpx.Client, engine: RunningEngine, peer: WsManPeer
) -> None:
    wrong = "Not-The-Right-0ne"
    execution = run(st2, "core.winrm_cmd", *login(peer, password=wrong), "cmd=whoami")

    assert execution["status"] == "failed"
    result = execution["result"]
    assert result["return_code"] == -1 and result["failed"] is True
    assert result["error"] == (
        f"WinRM login to http://127.0.0.1:{peer.port}/wsman failed: the credentials were rejected"
    )
    assert peer.refused_logins >= 1 and not peer.commands()
    listed = shown(st2, execution["id"])
    assert wrong not in listed
    assert json.loads(listed)["parameters"]["password"] == "********"
    raw = api.get(f"/executions/{execution['id']}").text
    assert wrong not in raw and PASSWORD not in raw


def test_a_command_that_never_ends_times_out_and_is_terminated(
    st2: St2, api: httpx.Client, peer: WsManPeer
) -> None:
    peer.responder = lambda command: Reply(stdout=b"waiting for ever\r\n", never_ends=True)
    peer.receive_wait = 0.5  # the host answers "no output yet" and the runner asks again
    started = time.monotonic()
    result = st2("run", "core.winrm_ps_cmd", *login(peer), "cmd=Wait-Event", "timeout=3", "-j")
    elapsed = time.monotonic() - started

    execution = json.loads(result.stdout)
    assert execution["status"] == "timeout", execution
    assert execution["result"] == {
        "failed": True,
        "succeeded": False,
        "return_code": -1,
        "stdout": "waiting for ever\r\n",
        "stderr": "",
        "error": "Action failed to complete in 3 seconds",
    }
    assert elapsed < 20
    command = peer.last_command()
    assert command.receives >= 3
    assert command.signals[0] == TERMINATE and peer.shell_of(command).deleted


def test_cancel_stops_a_running_command_on_the_host(
    st2: St2, api: httpx.Client, peer: WsManPeer
) -> None:
    peer.responder = lambda command: Reply(stdout=b"started\r\n", never_ends=True)
    execution_id = run_async(st2, "core.winrm_cmd", *login(peer), "cmd=ping -t localhost")
    peer.wait_for(lambda: any(c.receives for c in peer.commands()), "a Receive")
    canceled = st2("execution", "cancel", execution_id)
    assert canceled.returncode == 0, output(canceled)

    document = wait_for(api, execution_id, FINISHED)
    assert document["status"] == "canceled"
    command = peer.last_command()
    peer.wait_for(lambda: peer.shell_of(command).deleted, "the shell deleted")
    assert command.signals[0] == TERMINATE


def test_no_password_reached_the_engine_logs(engine: RunningEngine, peer: WsManPeer) -> None:
    """Runs after the tests above, which sent the password with every request."""
    for service in engine.processes:
        assert PASSWORD not in engine.log(service), f"the password is in the {service} log"
        assert "Not-The-Right-0ne" not in engine.log(service)


# --- the runners on their own ------------------------------------------------------------------


def runner_request(runner_type: str, peer: WsManPeer, **parameters: Any) -> RunnerRequest:
    return RunnerRequest(
        execution_id="6650f0c1a2b3c4d5e6f7081a",
        action_ref="core.winrm_cmd",
        pack="core",
        runner_type=runner_type,
        runner_parameters=connection_parameters(peer, **parameters),
        timeout=30,
    )


def test_loopback_is_refused_without_allowed_networks(peer: WsManPeer) -> None:
    runner = WinRmCommandRunner(runner_request("winrm-cmd", peer, cmd="dir"), RecordingSink())
    runner.pre_run()
    outcome = runner.run()

    assert outcome.status is ExecutionStatus.FAILED
    assert outcome.result["error"].startswith("Destination 127.0.0.1, a loopback address")
    assert "[winrm_runner] allowed_networks" in outcome.result["error"]
    assert peer.actions == [], "nothing reached the host"


def test_https_with_and_without_certificate_verification(tmp_path: Path) -> None:
    with running_wsman(tmp_path, tls=True) as secure:
        secure.responder = lambda command: Reply(stdout=b"over TLS\r\n")
        trusting = runner_request("winrm-cmd", secure, cmd="ver")
        runner = WinRmCommandRunner(trusting, RecordingSink(), network_policy=LOOPBACK)
        runner.pre_run()
        outcome = runner.run()
        assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
        assert outcome.result["stdout"] == "over TLS\r\n"

        checking = runner_request("winrm-cmd", secure, cmd="ver", verify_ssl_cert=True)
        runner = WinRmCommandRunner(checking, RecordingSink(), network_policy=LOOPBACK)
        runner.pre_run()
        refused = runner.run()
        assert refused.status is ExecutionStatus.FAILED
        assert "CERTIFICATE_VERIFY_FAILED" in refused.result["error"]
        assert len(secure.commands()) == 1


@contextmanager
def unanswered_port() -> Iterator[int]:
    """A loopback port whose listen queue is full, so a new connection hangs in the handshake."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = int(server.getsockname()[1])
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            time.sleep(0.2)
            yield port
        finally:
            for filler in fillers:
                filler.close()


def test_cancel_while_connecting_returns_promptly(peer: WsManPeer) -> None:
    with unanswered_port() as port:
        request = runner_request("winrm-cmd", peer, cmd="dir", port=port)
        runner = WinRmCommandRunner(request, RecordingSink(), network_policy=LOOPBACK)
        runner.pre_run()
        threading.Timer(1.0, runner.cancel).start()
        started = time.monotonic()
        outcome = runner.run()

    assert outcome.status is ExecutionStatus.CANCELED, outcome.result
    assert time.monotonic() - started < 3


class FakeWindows:
    """Answers the upload of a long script as a Windows host would, keeping the file."""

    directory = "C:\\Users\\ops\\AppData\\Local\\Temp\\k2f4.x1z"

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.removed: list[str] = []
        self.ran: list[str] = []

    def __call__(self, command: Command) -> Reply:
        script = command.script or ""
        if "GetRandomFileName()" in script:
            return Reply(stdout=f"{self.directory}\r\n".encode())
        chunk = re.search(r'FromBase64String\("([^"]*)"\)', script)
        if chunk:
            path = re.search(r'Open\("([^"]*)"', script)
            assert path is not None
            name = path.group(1)
            self.files[name] = self.files.get(name, b"") + base64.b64decode(chunk.group(1))
            return Reply()
        if script.startswith("Remove-Item"):
            self.removed.append(script)
            return Reply()
        self.ran.append(script)
        return Reply(stdout=b"long script ran\r\n")


def script_request(peer: WsManPeer, script: Path, *, timeout: float, **extra: Any) -> RunnerRequest:
    return RunnerRequest(
        execution_id="6650f0c1a2b3c4d5e6f7081a",
        action_ref="windows.long",
        pack="windows",
        runner_type="winrm-ps-script",
        entry_point=script.name,
        entry_point_path=script,
        runner_parameters=connection_parameters(peer),
        timeout=timeout,
        **extra,
    )


def test_a_script_too_long_for_one_command_line_is_uploaded_run_and_removed(
    peer: WsManPeer, tmp_path: Path
) -> None:
    windows = FakeWindows()
    peer.responder = windows
    script = tmp_path / "long.ps1"
    body = "".join(f"Write-Output 'line {n}: héllo'\n" for n in range(400))
    script.write_text(body)
    request = script_request(
        peer,
        script,
        timeout=30,
        action_parameters={"target": "web 1"},
        parameter_schema={"target": {"type": "string", "position": 0}},
    )
    sink = RecordingSink()
    runner = WinRmPsScriptRunner(request, sink, network_policy=LOOPBACK)
    runner.pre_run()
    outcome = runner.run()

    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["stdout"] == "long script ran\r\n"
    assert sink.text("stdout") == "long script ran\r\n", "the upload's own output is not shown"
    path = f"{windows.directory}\\script.ps1"
    assert windows.files == {path: b"\xef\xbb\xbf" + body.encode()}
    assert windows.ran == [f'& "{path}" "web 1"']
    assert windows.removed == [f'Remove-Item -Force -Recurse -LiteralPath "{windows.directory}"']
    assert all(len(command.command_line) <= 8191 for command in peer.commands())
    assert len({command.shell_id for command in peer.commands()}) == 1


def test_a_script_that_times_out_is_still_removed(peer: WsManPeer, tmp_path: Path) -> None:
    windows = FakeWindows()

    def hang_when_run(command: Command) -> Reply:
        reply = windows(command)
        if windows.ran and command.script == windows.ran[-1]:
            return Reply(never_ends=True)
        return reply

    peer.responder = hang_when_run
    peer.receive_wait = 0.5
    script = tmp_path / "long.ps1"
    script.write_text("Start-Sleep 1\n" * 700)
    request = script_request(peer, script, timeout=3)
    runner = WinRmPsScriptRunner(request, RecordingSink(), network_policy=LOOPBACK)
    runner.pre_run()
    outcome = runner.run()

    assert outcome.status is ExecutionStatus.TIMEOUT, outcome.result
    assert windows.removed, "the uploaded script was removed after the timeout"
    assert peer.shell_of(peer.last_command()).deleted


def test_ps_cmd_runner_reports_a_host_that_is_not_winrm(tmp_path: Path) -> None:
    """Port 1 on loopback refuses connections: the run fails and says where it tried."""
    request = RunnerRequest(
        execution_id="6650f0c1a2b3c4d5e6f7081a",
        action_ref="core.winrm_ps_cmd",
        pack="core",
        runner_type="winrm-ps-cmd",
        runner_parameters={
            "host": "127.0.0.1",
            "port": 1,
            "scheme": "http",
            "transport": "basic",
            "username": "ops",
            "password": PASSWORD,
            "cmd": "Get-Date",
        },
        timeout=10,
    )
    runner = WinRmPsCommandRunner(request, RecordingSink(), network_policy=LOOPBACK)
    runner.pre_run()
    outcome = runner.run()

    assert outcome.status is ExecutionStatus.FAILED
    assert outcome.result["error"].startswith("Failed connecting to WinRM at http://127.0.0.1:1")
    assert PASSWORD not in json.dumps(outcome.result)
