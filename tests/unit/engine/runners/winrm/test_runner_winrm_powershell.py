"""The PowerShell the WinRM runners send, and how they read their options, StackStorm's way."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from winrm import transport as winrm_transport

from poundcake.engine.runners.base import RunnerRequest
from poundcake.engine.runners.winrm.powershell import (
    MAKE_DIRECTORY,
    MAX_COMMAND_LENGTH,
    ScriptUpload,
    decoded_script,
    encoded_command,
    fits_on_command_line,
    literal,
    script_arguments,
    script_block,
)
from poundcake.engine.runners.winrm.runner import WinRmOptions, WinRmPsScriptRunner
from poundcake.engine.runners.winrm.session import clixml_text
from poundcake.exceptions import ValidationError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "$null"),
        (True, "$true"),
        (False, "$false"),
        (0, "0"),
        (42, "42"),
        (-1.5, "-1.5"),
        ("", '""'),
        ("plain", '"plain"'),
        ([], "@()"),
        ({}, "@{}"),
        (["a", 1, None, [True]], '@("a", 1, $null, @($true))'),
        ({"name": "web", "ports": [80, 443]}, '@{"name" = "web"; "ports" = @(80, 443)}'),
    ],
)
def test_values_become_powershell_literals(value: Any, expected: str) -> None:
    assert literal(value) == expected


def test_strings_are_escaped_with_backticks_so_nothing_expands() -> None:
    hostile = "a`b\"c'd$env:PATH\n\r\t\a\b\f\v\0$(Remove-Item C:\\)"
    assert literal(hostile) == ('"a``b`"c`\'d`$env:PATH`n`r`t`a`b`f`v`0`$(Remove-Item C:\\)"')
    assert literal({"k$": "v`"}) == '@{"k`$" = "v``"}'


def test_named_arguments_come_first_then_positional_ones() -> None:
    named = {"Name": "spooler", "Force": True, "Ports": [1, 2], "Missing": None}
    assert script_arguments(["first", "5"], named, kwarg_op="-") == (
        '-Name "spooler" -Force $true -Ports @(1, 2) -Missing $null "first" "5"'
    )
    # As StackStorm: named arguments alone keep their trailing space.
    assert script_arguments([], {"Name": "x"}, kwarg_op="/") == '/Name "x" '
    assert script_arguments(["only"], {}, kwarg_op="-") == '"only"'
    assert script_arguments([], {}, kwarg_op="-") == ""


def test_a_script_with_arguments_runs_as_a_script_block() -> None:
    assert script_block("Get-Date", "") == "Get-Date"
    assert script_block("param($a)\nWrite-Output $a", '"x"') == (
        '& {param($a)\nWrite-Output $a} "x"'
    )


def test_powershell_is_sent_as_an_encoded_command() -> None:
    assert encoded_command("dir") == "powershell -encodedcommand ZABpAHIA"
    script = "Write-Output 'héllo wörld' # ✓"
    command = encoded_command(script)
    encoded = command.removeprefix("powershell -encodedcommand ")
    assert base64.b64decode(encoded).decode("utf-16-le") == script
    assert decoded_script(command) == script
    with pytest.raises(ValueError, match="not an encoded PowerShell command"):
        decoded_script("cmd /c dir")


def test_the_command_line_limit_is_windows_own() -> None:
    assert fits_on_command_line("x" * MAX_COMMAND_LENGTH)
    assert not fits_on_command_line("x" * (MAX_COMMAND_LENGTH + 1))
    assert MAX_COMMAND_LENGTH == 8191


def test_an_uploaded_script_is_rebuilt_from_chunks_that_each_fit_on_a_command_line() -> None:
    script = "Write-Output 'é'\n" * 800
    directory = "C:\\Users\\" + "a-long-user-name" * 12 + "\\AppData\\Local\\Temp\\x1y2z3.abc"
    upload = ScriptUpload(script, directory)
    commands = list(upload.chunks())
    assert len(commands) > 1
    data = b""
    for command in commands:
        assert fits_on_command_line(encoded_command(command))
        assert f'"{directory}\\script.ps1"' in command
        data += base64.b64decode(command.split('FromBase64String("', 1)[1].split('"', 1)[0])
    assert data == b"\xef\xbb\xbf" + script.encode()
    assert upload.invocation('-Name "x"') == f'& "{directory}\\script.ps1" -Name "x"'
    assert upload.invocation("") == f'& "{directory}\\script.ps1"'
    assert upload.removal() == f'Remove-Item -Force -Recurse -LiteralPath "{directory}"'
    assert "GetTempPath()" in MAKE_DIRECTORY and "GetRandomFileName()" in MAKE_DIRECTORY


def test_a_path_with_quotes_or_dollars_stays_one_literal() -> None:
    upload = ScriptUpload("x", "C:\\Temp\\it's $here")
    assert upload.removal().endswith('"C:\\Temp\\it`\'s `$here"')


CLIXML = (
    "#< CLIXML\r\n"
    '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject'
    '</T></TN><MS><I64 N="SourceId">1</I64></MS></Obj>'
    "<S S=\"Error\">Get-Item : Cannot find path 'C:\\nope' because it does not exist."
    "_x000D__x000A_</S>"
    '<S S="Error">At line:1 char:1_x000D__x000A_</S>'
    '<S S="Error">+ tab_x0009_here_x000D__x000A_</S></Objs>'
)


def test_powershell_error_xml_becomes_its_messages() -> None:
    assert clixml_text(CLIXML) == (
        "Get-Item : Cannot find path 'C:\\nope' because it does not exist.\n"
        "At line:1 char:1\n+ tab\there"
    )
    assert clixml_text("plain error\r\n") == "plain error\r\n"
    assert clixml_text("#< CLIXML\r\n<Objs><broken") == "#< CLIXML\r\n<Objs><broken"
    empty = '#< CLIXML\r\n<Objs><Obj S="progress"/></Objs>'
    assert clixml_text(empty) == empty


def request(runner_type: str = "winrm-cmd", **parameters: Any) -> RunnerRequest:
    return RunnerRequest(
        execution_id="6650f0c1a2b3c4d5e6f7081a",
        action_ref="core.winrm_cmd",
        pack="core",
        runner_type=runner_type,
        runner_parameters={"host": "win1", "username": "ops", "password": "pw", **parameters},
    )


def test_options_take_stackstorms_defaults() -> None:
    options = WinRmOptions.from_request(request())
    assert (options.port, options.scheme, options.transport, options.kwarg_op) == (
        5986,
        "https",
        "ntlm",
        "-",
    )
    assert options.verify_ssl_cert is True
    assert options.timeout == 60
    assert options.endpoint == "https://win1:5986/wsman"


def test_the_password_is_not_in_the_options_repr() -> None:
    options = WinRmOptions.from_request(request(password="Sup3r-secret"))
    assert "Sup3r-secret" not in repr(options)
    assert "Sup3r-secret" not in repr(options.connection())
    assert options.connection().password == "Sup3r-secret"


def test_port_5985_always_means_http_and_ipv6_hosts_are_bracketed() -> None:
    assert WinRmOptions.from_request(request(port=5985, scheme="https")).endpoint == (
        "http://win1:5985/wsman"
    )
    options = WinRmOptions.from_request(request(host="fe80::1", port=8443))
    assert options.endpoint == "https://[fe80::1]:8443/wsman"
    assert WinRmOptions.from_request(request(host="[::1]")).endpoint == "https://[::1]:5986/wsman"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"host": "win1/evil?x="}, 'host "win1/evil?x=" is not a host name'),
        ({"host": "user@win1"}, 'host "user@win1" is not a host name'),
        ({"host": ""}, "host is required"),
        ({"port": 70000}, "port must be between 1 and 65535"),
        ({"scheme": "ftp"}, 'scheme must be "http" or "https"'),
        ({"transport": "certificate"}, 'transport "certificate" needs a client certificate'),
        ({"transport": "kerberos"}, 'transport "kerberos" needs pywinrm[kerberos]'),
        ({"transport": "credssp"}, 'transport "credssp" needs pywinrm[credssp]'),
        ({"transport": "smoke-signals"}, "transport must be one of basic, certificate"),
        ({"username": ""}, "username is required"),
    ],
)
def test_options_that_cannot_work_are_refused_by_name(
    parameters: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(winrm_transport, "HAVE_KERBEROS", False)
    monkeypatch.setattr(winrm_transport, "HAVE_CREDSSP", False)
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("?", r"\?")):
        WinRmOptions.from_request(request(**parameters)).check()


def test_kerberos_and_credssp_are_taken_once_their_extras_are_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(winrm_transport, "HAVE_KERBEROS", True)
    monkeypatch.setattr(winrm_transport, "HAVE_CREDSSP", True)
    for transport in ("kerberos", "credssp", "ntlm", "basic", "plaintext", "ssl"):
        WinRmOptions.from_request(request(transport=transport)).check()


def test_script_arguments_come_from_the_actions_parameters_only(tmp_path: Path) -> None:
    script = tmp_path / "set_service.ps1"
    script.write_text("param($Name, $Start, $Count, $Tags, $Note)\n")
    schema: dict[str, Any] = {
        "host": {"type": "string"},
        "password": {"type": "string", "secret": True},
        "timeout": {"type": "integer"},
        "name": {"type": "string", "position": 1},
        "count": {"type": "integer", "position": 2},
        "start": {"type": "boolean"},
        "tags": {"type": "array"},
        "note": {"type": "string"},
    }
    runner_request = RunnerRequest(
        execution_id="6650f0c1a2b3c4d5e6f7081a",
        action_ref="windows.set_service",
        pack="windows",
        runner_type="winrm-ps-script",
        entry_point="set_service.ps1",
        entry_point_path=script,
        runner_parameters={"host": "win1", "username": "ops", "password": "pw", "timeout": 9},
        action_parameters={"name": 'spool "er"', "count": 5, "start": False, "tags": ["a", 2]},
        parameter_schema=schema,
    )
    runner = WinRmPsScriptRunner(runner_request, lambda _kind, _data: None)
    assert runner.arguments() == ('-start $false -tags @("a", 2) -note $null "spool `"er`"" "5"')
