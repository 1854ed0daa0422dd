"""The ``winrm-cmd``, ``winrm-ps-cmd`` and ``winrm-ps-script`` runners (StackStorm's WinRM runners).

Each logs in to the WinRM service at ``{scheme}://{host}:{port}/wsman`` (port 5985 always means
``http``) with pywinrm's ``transport`` and runs one thing in a remote shell (see :mod:`.session`):
``winrm-cmd`` the ``cmd`` runner parameter as a Command Prompt command, ``winrm-ps-cmd`` the
``cmd`` runner parameter as PowerShell, and ``winrm-ps-script`` the action's entry point as a
PowerShell script with the action's parameters as its arguments (see :mod:`.powershell`).

The result is StackStorm's: ``{"failed", "succeeded", "return_code", "stdout", "stderr"}``, the
streams as the host wrote them (trailing newlines kept) and parsed when they hold a JSON object
or array. Exit code 0 succeeds. A run past ``timeout`` ends in ``timeout`` with return code -1,
a canceled one in ``canceled``; both terminate the remote command. A host that cannot be
reached, refuses the login or is not a WinRM service fails the run with ``error`` saying so;
the password is never part of a result or a log line.

Like the http-request runner, these runners contact only public addresses unless st2.conf
``[winrm_runner] allowed_networks`` allows more (StackStorm has no such guard).
"""

from __future__ import annotations

import ipaddress
import re
import threading
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

from winrm import transport as winrm_transport

from poundcake.config import load_st2_config
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import (
    OutputSink,
    Runner,
    RunnerOutcome,
    RunnerRequest,
    RunnerServices,
)
from poundcake.engine.runners.http.guard import DestinationGuard, NetworkPolicy
from poundcake.engine.runners.registry import runner_types
from poundcake.engine.runners.remote.host import RunLimits
from poundcake.engine.runners.shell.arguments import positional_names, serialize_value
from poundcake.engine.runners.shell.process import Ending
from poundcake.engine.runners.shell.results import CANCELED_ERROR, shell_result, timeout_error
from poundcake.engine.runners.shell.runner import (
    run_timeout,
    script_path,
    string_map,
)
from poundcake.engine.runners.winrm.connection import ConnectionSettings
from poundcake.engine.runners.winrm.powershell import (
    MAKE_DIRECTORY,
    ScriptUpload,
    encoded_command,
    fits_on_command_line,
    script_arguments,
    script_block,
)
from poundcake.engine.runners.winrm.session import (
    CommandOutcome,
    WinRmRunError,
    WinRmSession,
    discard_output,
)
from poundcake.exceptions import ValidationError

ALLOWED_NETWORKS_SETTING = "[winrm_runner] allowed_networks"
HTTP_PORT = 5985
DEFAULT_PORT = 5986
DEFAULT_KWARG_OP = "-"
FAILURE_RETURN_CODE = -1
"""The return code of a run that timed out, was canceled or could not reach the host."""

TRANSPORTS = ("basic", "certificate", "credssp", "kerberos", "ntlm", "plaintext", "ssl")
_HOST_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$")


def _url_host(host: str) -> str:
    """Return ``host`` as it goes in a URL, or raise ValidationError if it names no host."""
    bare = host.removeprefix("[").removesuffix("]")
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        if _HOST_NAME.match(host):
            return host
        raise ValidationError(f'host "{host}" is not a host name or an IP address') from None
    return f"[{address}]" if address.version == 6 else str(address)


@dataclass(frozen=True)
class WinRmOptions:
    """The runner parameters the three WinRM runners share, with StackStorm's defaults."""

    host: str
    port: int
    scheme: str
    transport: str
    username: str
    password: str = field(repr=False)
    verify_ssl_cert: bool
    cwd: str | None
    env: dict[str, str]
    kwarg_op: str
    timeout: float | None

    @classmethod
    def from_request(cls, request: RunnerRequest) -> WinRmOptions:
        """Read the options from the request's runner parameters."""
        parameters = request.runner_parameters
        port = parameters.get("port")
        port = DEFAULT_PORT if port is None else port
        kwarg_op = parameters.get("kwarg_op")
        return cls(
            host=str(parameters.get("host") or ""),
            port=port,
            scheme="http" if port == HTTP_PORT else str(parameters.get("scheme") or "https"),
            transport=str(parameters.get("transport") or "ntlm"),
            username=str(parameters.get("username") or ""),
            password=str(parameters.get("password") or ""),
            verify_ssl_cert=bool(parameters.get("verify_ssl_cert", True)),
            cwd=parameters.get("cwd") or None,
            env=string_map(parameters.get("env") or {}),
            kwarg_op=DEFAULT_KWARG_OP if kwarg_op is None else str(kwarg_op),
            timeout=run_timeout(request),
        )

    @property
    def endpoint(self) -> str:
        """The WinRM service's URL."""
        return f"{self.scheme}://{_url_host(self.host)}:{self.port}/wsman"

    def check(self) -> None:
        """Refuse options that cannot work, naming the parameter."""
        if not self.host:
            raise ValidationError("host is required")
        _url_host(self.host)
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise ValidationError(f"port must be an integer, not {self.port!r}")
        if not 0 < self.port < 65536:
            raise ValidationError(f"port must be between 1 and 65535, not {self.port}")
        if self.scheme not in ("http", "https"):
            raise ValidationError(f'scheme must be "http" or "https", not "{self.scheme}"')
        _check_transport(self.transport)
        if not self.username:
            raise ValidationError("username is required")

    def connection(self) -> ConnectionSettings:
        """Return where and how to connect."""
        return ConnectionSettings(
            endpoint=self.endpoint,
            username=self.username,
            password=self.password,
            auth_method=self.transport,
            verify_ssl_cert=self.verify_ssl_cert,
        )


def _check_transport(transport: str) -> None:
    if transport not in TRANSPORTS:
        raise ValidationError(
            f'transport must be one of {", ".join(TRANSPORTS)}, not "{transport}"'
        )
    if transport == "certificate":
        raise ValidationError(
            'transport "certificate" needs a client certificate, and the WinRM runners take no '
            'parameters for one (as in StackStorm); use "ntlm", "basic" or "ssl"'
        )
    missing = {
        "kerberos": (winrm_transport.HAVE_KERBEROS, "pywinrm[kerberos]"),
        "credssp": (winrm_transport.HAVE_CREDSSP, "pywinrm[credssp]"),
    }.get(transport)
    if missing is not None and not missing[0]:
        raise ValidationError(
            f'transport "{transport}" needs {missing[1]}, which is not installed where the '
            "action runner runs"
        )


def winrm_result(
    return_code: int, stdout: str, stderr: str, *, error: str | None = None
) -> dict[str, Any]:
    """Return StackStorm's WinRM result document."""
    return shell_result(return_code, stdout, stderr, error=error, strip=False)


class WinRmRunner(Runner):
    """What the three WinRM runners share: options, the guard, the session, limits, result."""

    def __init__(
        self,
        request: RunnerRequest,
        output: OutputSink,
        services: RunnerServices | None = None,
        *,
        network_policy: NetworkPolicy | None = None,
    ) -> None:
        super().__init__(request, output, services)
        self.options = WinRmOptions.from_request(request)
        self._network_policy = network_policy
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._session: WinRmSession | None = None

    @abstractmethod
    def work(self, session: WinRmSession) -> CommandOutcome:
        """Run what this runner runs in ``session`` and return how it ended."""

    def pre_run(self) -> None:
        self.options.check()

    def _policy(self) -> NetworkPolicy:
        if self._network_policy is not None:
            return self._network_policy
        if self.services.config_file is not None:
            config = load_st2_config(self.services.config_file)
            return NetworkPolicy.parse(
                config.winrm_allowed_networks, setting=ALLOWED_NETWORKS_SETTING
            )
        return NetworkPolicy(setting=ALLOWED_NETWORKS_SETTING)

    def run(self) -> RunnerOutcome:
        options = self.options
        limits = RunLimits(options.timeout, self._stop)
        guard = DestinationGuard.build(self._policy(), host_list_parameter=None)
        session = WinRmSession(
            options.connection(), guard, limits, cwd=options.cwd, env=options.env
        )
        with self._lock:
            self._session = session
        if self._stop.is_set():
            session.interrupt()
        deadline = threading.Timer(options.timeout, session.interrupt) if options.timeout else None
        if deadline is not None:
            deadline.daemon = True
            deadline.start()
        try:
            outcome = self.work(session)
        except WinRmRunError as error:
            ending = limits.ending()
            if ending is None:
                result = winrm_result(FAILURE_RETURN_CODE, "", "", error=str(error))
                return RunnerOutcome(ExecutionStatus.FAILED, result)
            outcome = CommandOutcome(ending, FAILURE_RETURN_CODE, "", "")
        finally:
            if deadline is not None:
                deadline.cancel()
            session.close()
        return self._outcome(outcome)

    def cancel(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            session = self._session
        if session is not None:
            session.interrupt()

    def _outcome(self, outcome: CommandOutcome) -> RunnerOutcome:
        if outcome.ending is Ending.TIMED_OUT:
            error = timeout_error(self.options.timeout or 0)
            result = winrm_result(FAILURE_RETURN_CODE, outcome.stdout, outcome.stderr, error=error)
            return RunnerOutcome(ExecutionStatus.TIMEOUT, result)
        if outcome.ending is Ending.CANCELED:
            result = winrm_result(
                FAILURE_RETURN_CODE, outcome.stdout, outcome.stderr, error=CANCELED_ERROR
            )
            return RunnerOutcome(ExecutionStatus.CANCELED, result)
        result = winrm_result(outcome.return_code, outcome.stdout, outcome.stderr)
        status = ExecutionStatus.SUCCEEDED if result["succeeded"] else ExecutionStatus.FAILED
        return RunnerOutcome(status, result)

    def run_powershell(self, session: WinRmSession, script: str, arguments: str) -> CommandOutcome:
        """Run PowerShell: inline when it fits on a command line, else as an uploaded script."""
        command = encoded_command(script_block(script, arguments))
        if fits_on_command_line(command):
            return session.run(command, self.output, powershell=True)
        made = _helper(session, MAKE_DIRECTORY, "make a temporary directory for the script")
        if made.ending is not Ending.EXITED:
            return made
        printed = made.stdout.strip().splitlines()
        if not printed:
            raise WinRmRunError("Unable to make a temporary directory for the script: no path")
        upload = ScriptUpload(script, printed[-1].strip())
        session.on_close(encoded_command(upload.removal()))
        for chunk in upload.chunks():
            sent = _helper(session, chunk, "upload the script")
            if sent.ending is not Ending.EXITED:
                return sent
        invocation = encoded_command(upload.invocation(arguments))
        return session.run(invocation, self.output, powershell=True)


def _helper(session: WinRmSession, script: str, purpose: str) -> CommandOutcome:
    """Run PowerShell of our own; its output is not the action's. Raise if it fails."""
    outcome = session.run(encoded_command(script), discard_output, powershell=True)
    if outcome.ending is Ending.EXITED and outcome.return_code != 0:
        raise WinRmRunError(
            f"Unable to {purpose} (exit code {outcome.return_code}):\n"
            f"stdout = {outcome.stdout}\n\nstderr = {outcome.stderr}"
        )
    if outcome.ending is not Ending.EXITED:
        return CommandOutcome(outcome.ending, FAILURE_RETURN_CODE, "", "")
    return outcome


class _CommandLineRunner(WinRmRunner):
    """A WinRM runner that runs its ``cmd`` runner parameter."""

    def pre_run(self) -> None:
        cmd = self.request.runner_parameters.get("cmd")
        if not isinstance(cmd, str) or not cmd.strip():
            raise ValidationError(f"{self.runner_type} needs a non-empty 'cmd'")
        super().pre_run()

    @property
    def cmd(self) -> str:
        """The command to run."""
        return str(self.request.runner_parameters["cmd"])


class WinRmCommandRunner(_CommandLineRunner):
    """``winrm-cmd``: runs the ``cmd`` runner parameter with the Command Prompt."""

    runner_type = "winrm-cmd"

    def work(self, session: WinRmSession) -> CommandOutcome:
        return session.run(self.cmd, self.output, powershell=False)


class WinRmPsCommandRunner(_CommandLineRunner):
    """``winrm-ps-cmd``: runs the ``cmd`` runner parameter with PowerShell."""

    runner_type = "winrm-ps-cmd"

    def work(self, session: WinRmSession) -> CommandOutcome:
        return self.run_powershell(session, self.cmd, "")


class WinRmPsScriptRunner(WinRmRunner):
    """``winrm-ps-script``: runs the entry point with PowerShell, parameters as arguments."""

    runner_type = "winrm-ps-script"

    def pre_run(self) -> None:
        script_path(self.request)
        super().pre_run()

    def work(self, session: WinRmSession) -> CommandOutcome:
        script = script_path(self.request).read_text(encoding="utf-8")
        return self.run_powershell(session, script, self.arguments())

    def arguments(self) -> str:
        """Return the script's arguments from the action's parameters, as StackStorm builds them.

        Every parameter of the action (not of the runner) is an argument, one without a value
        as ``$null``; those with a ``position`` are positional, in position order.
        """
        request = self.request
        runner_parameters = runner_types()[self.runner_type].runner_parameters
        names = [name for name in request.parameter_schema if name not in runner_parameters]
        names += [name for name in request.action_parameters if name not in names]
        schema = {name: request.parameter_schema.get(name) or {} for name in names}
        positional = positional_names(schema)
        values = request.action_parameters
        named = {name: values.get(name) for name in names if name not in positional}
        return script_arguments(
            [serialize_value(values.get(name)) for name in positional],
            named,
            kwarg_op=self.options.kwarg_op,
        )
