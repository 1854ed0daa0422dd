"""The ``local-shell-cmd`` and ``local-shell-script`` runners.

Both run on this host, in a new process group, as the user the action runner service runs as.
StackStorm switches to its system user ``stanley`` through sudo; PoundCake does not. With the
``sudo`` runner parameter the command runs through ``sudo -E --`` (``-S`` and the password on
stdin when ``sudo_password`` is given), or directly when the service already runs as root.

The child's environment is a fixed base (``PATH``, ``HOME``, ``USER``, ``LOGNAME``, ``SHELL``,
``LANG``), not the service's own, so the service's settings and secrets never reach actions; the
``env`` runner parameter is merged over it, then ``ST2_ACTION_PACK_NAME``,
``ST2_ACTION_EXECUTION_ID`` and ``ST2_ACTION_DEBUG``, and, as StackStorm's local runner gives
them, ``ST2_ACTION_API_URL`` and ``ST2_ACTION_AUTH_TOKEN`` (a token of the execution's user for
this run, revoked when it ends) when the action runner provides tokens.

``local-shell-cmd`` runs ``cmd`` with ``bash -c``. ``local-shell-script`` runs the action's entry
point with arguments built from the action parameters (see :mod:`.arguments`), passed as an argv
list with no shell in between. The entry point is executed as the kernel would execute it when it
is executable; when it is not, it is run with the interpreter its ``#!`` line names, or with bash.
"""

from __future__ import annotations

import os
import pwd
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import (
    OutputSink,
    Runner,
    RunnerOutcome,
    RunnerRequest,
    RunnerServices,
    action_api_access,
)
from poundcake.engine.runners.shell.arguments import DEFAULT_KWARG_OP, script_arguments
from poundcake.engine.runners.shell.process import Ending, ProcessOutcome, ProcessRun
from poundcake.engine.runners.shell.results import (
    CANCELED_ERROR,
    TIMEOUT_RETURN_CODE,
    shell_result,
    sudo_password_error,
    timeout_error,
)
from poundcake.exceptions import ValidationError

DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ERROR_RETURN_CODE = -1
_SHEBANG_BYTES = 256


@dataclass(frozen=True)
class ShellOptions:
    """The runner parameters both local shell runners share, with StackStorm's defaults."""

    cwd: Path | None
    env: dict[str, str]
    kwarg_op: str
    sudo: bool
    sudo_password: str | None
    timeout: float | None
    debug: bool

    @classmethod
    def from_request(cls, request: RunnerRequest) -> ShellOptions:
        """Read the options from the request's runner parameters."""
        parameters = request.runner_parameters
        cwd = parameters.get("cwd")
        return cls(
            cwd=Path(cwd) if cwd else None,
            env=string_map(parameters.get("env") or {}),
            kwarg_op=kwarg_op_parameter(parameters.get("kwarg_op")),
            sudo=bool(parameters.get("sudo", False)),
            sudo_password=parameters.get("sudo_password") or None,
            timeout=run_timeout(request),
            debug=bool(parameters.get("debug", False)),
        )


def run_timeout(request: RunnerRequest) -> float | None:
    """Return the seconds the run may take: the request's, else the ``timeout`` parameter's."""
    timeout = request.timeout
    if timeout is None:
        timeout = request.runner_parameters.get("timeout", DEFAULT_TIMEOUT_SECONDS)
    return float(timeout) if timeout else None


def base_environment() -> dict[str, str]:
    """Return the environment every local action starts from."""
    account = pwd.getpwuid(os.getuid())
    return {
        "PATH": DEFAULT_PATH,
        "HOME": account.pw_dir,
        "USER": account.pw_name,
        "LOGNAME": account.pw_name,
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
    }


def action_variables(request: RunnerRequest, *, debug: bool = False) -> dict[str, str]:
    """Return the ``ST2_ACTION_*`` variables StackStorm gives every shell action."""
    return {
        "ST2_ACTION_PACK_NAME": request.pack,
        "ST2_ACTION_EXECUTION_ID": request.execution_id,
        "ST2_ACTION_DEBUG": str(debug),
    }


def action_environment(request: RunnerRequest, options: ShellOptions) -> dict[str, str]:
    """Return the base environment, the ``env`` parameter over it, then the ST2_ACTION_ vars."""
    return {
        **base_environment(),
        **options.env,
        **action_variables(request, debug=options.debug),
    }


def script_command(path: Path) -> list[str]:
    """Return the argv that executes the script at ``path``, before its arguments."""
    if os.access(path, os.X_OK):
        return [str(path)]
    with path.open("rb") as script:
        first_line = script.readline(_SHEBANG_BYTES)
    if first_line.startswith(b"#!"):
        interpreter = first_line[2:].decode(errors="replace").strip().split(None, 1)
        if interpreter:
            return [*interpreter, str(path)]
    return ["bash", str(path)]


def with_sudo(
    argv: list[str], *, sudo: bool, password: str | None, as_root: bool
) -> tuple[list[str], str | None]:
    """Return ``argv`` run through ``sudo -E --`` when asked and not root, and its stdin data."""
    if not sudo or as_root:
        return argv, None
    if password:
        return ["sudo", "-S", "-E", "--", *argv], password + "\n"
    return ["sudo", "-E", "--", *argv], None


class LocalShellRunner(Runner):
    """What the two local shell runners share: options, sudo, the process and the result."""

    def __init__(
        self, request: RunnerRequest, output: OutputSink, services: RunnerServices | None = None
    ) -> None:
        super().__init__(request, output, services)
        self.options = ShellOptions.from_request(request)
        self._process = ProcessRun(output)

    @abstractmethod
    def command(self) -> list[str]:
        """Return the argv to run, before any sudo."""

    def run(self) -> RunnerOutcome:
        access = action_api_access(self.services, self.request, ttl=self.options.timeout)
        with access as api_access:
            return self._run({**action_environment(self.request, self.options), **api_access})

    def _run(self, env: dict[str, str]) -> RunnerOutcome:
        argv, stdin_data = with_sudo(
            self.command(),
            sudo=self.options.sudo,
            password=self.options.sudo_password,
            as_root=os.geteuid() == 0,
        )
        try:
            outcome = self._process.run(
                argv,
                env=env,
                cwd=self.options.cwd,
                stdin_data=stdin_data,
                timeout=self.options.timeout,
            )
        except OSError as error:
            result = shell_result(
                ERROR_RETURN_CODE, "", "", error=f"Failed to start {argv[0]}: {error}"
            )
            return RunnerOutcome(ExecutionStatus.FAILED, result)
        return self._outcome(outcome, sudo_password_used=stdin_data is not None)

    def cancel(self) -> None:
        self._process.cancel()

    def _outcome(self, outcome: ProcessOutcome, *, sudo_password_used: bool) -> RunnerOutcome:
        if outcome.ending is Ending.TIMED_OUT:
            error = timeout_error(self.options.timeout or 0)
            result = shell_result(TIMEOUT_RETURN_CODE, outcome.stdout, outcome.stderr, error=error)
            return RunnerOutcome(ExecutionStatus.TIMEOUT, result)
        if outcome.ending is Ending.CANCELED:
            result = shell_result(
                outcome.return_code, outcome.stdout, outcome.stderr, error=CANCELED_ERROR
            )
            return RunnerOutcome(ExecutionStatus.CANCELED, result)
        return_code = outcome.return_code
        sudo_error = sudo_password_error(str(outcome.stderr)) if sudo_password_used else None
        if sudo_error is not None:
            return_code = ERROR_RETURN_CODE
        result = shell_result(return_code, outcome.stdout, outcome.stderr, error=sudo_error)
        status = ExecutionStatus.SUCCEEDED if result["succeeded"] else ExecutionStatus.FAILED
        return RunnerOutcome(status, result)


class LocalShellCommandRunner(LocalShellRunner):
    """``local-shell-cmd``: runs the ``cmd`` runner parameter with bash."""

    runner_type = "local-shell-cmd"

    def pre_run(self) -> None:
        if self.request.entry_point:
            raise ValidationError("entry_point is only valid for the local-shell-script runner")
        cmd = self.request.runner_parameters.get("cmd")
        if not isinstance(cmd, str) or not cmd.strip():
            raise ValidationError("local-shell-cmd needs a non-empty 'cmd'")

    def command(self) -> list[str]:
        return ["bash", "-c", str(self.request.runner_parameters["cmd"])]


class LocalShellScriptRunner(LocalShellRunner):
    """``local-shell-script``: runs the action's entry point with its parameters as arguments."""

    runner_type = "local-shell-script"

    def pre_run(self) -> None:
        script_path(self.request)
        if self.request.runner_parameters.get("content_version"):
            raise ValidationError("content_version is not supported by PoundCake's engine")

    def command(self) -> list[str]:
        arguments = script_arguments(
            self.request.action_parameters,
            self.request.parameter_schema,
            kwarg_op=self.options.kwarg_op,
        )
        return [*script_command(script_path(self.request)), *arguments]


def script_path(request: RunnerRequest) -> Path:
    """Return the absolute path of the request's entry point; it must be an existing file."""
    path = request.entry_point_path
    if path is None:
        raise ValidationError(f'Action "{request.action_ref}" is missing "entry_point"')
    if not path.is_file():
        raise ValidationError(f'Entry point "{path}" of "{request.action_ref}" is not a file')
    return path.resolve()


def kwarg_op_parameter(value: Any) -> str:
    """Return the ``kwarg_op`` parameter, ``--`` when unset; an empty string is honoured."""
    return DEFAULT_KWARG_OP if value is None else str(value)


def string_map(values: Mapping[str, Any]) -> dict[str, str]:
    """Return ``values`` with every key and value as a string, ``None`` values left out."""
    return {str(name): str(value) for name, value in values.items() if value is not None}
