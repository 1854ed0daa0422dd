"""One WinRM run on a host: a remote shell, the commands run in it, and the clean-up after.

The shell is created with the run's working directory, environment and the UTF-8 code page
(65001), as StackStorm does. A command's output is fetched with WS-Management ``Receive`` calls
that each wait up to :data:`RECEIVE_WAIT_SECONDS` on the host (an operation timeout there just
means "no output yet"), and stdout streams to the sink as it arrives. PowerShell writes its error
stream as CLIXML; for PowerShell commands that is turned into plain text (:func:`clixml_text`)
and passed on once the command has ended.

The run's deadline and a cancel interrupt the connection (see :mod:`.connection`). Whatever
happened, :meth:`WinRmSession.close` then signals every command it started to terminate, runs
the clean-up commands registered with :meth:`WinRmSession.on_close`, and deletes the shell, on
a fresh connection with short timeouts if the first one was interrupted.
"""

from __future__ import annotations

import logging
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import requests
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
)
from winrm.protocol import Protocol

from poundcake.engine.runners.base import OutputSink
from poundcake.engine.runners.http.guard import DestinationDeniedError, DestinationGuard
from poundcake.engine.runners.remote.host import RunLimits
from poundcake.engine.runners.shell.output import LineStream
from poundcake.engine.runners.shell.process import Ending
from poundcake.engine.runners.winrm.connection import ConnectionSettings, WinRmConnection

logger = logging.getLogger(__name__)

UTF8_CODE_PAGE = 65001
RECEIVE_WAIT_SECONDS = 20
"""How long one Receive call may wait on the host for output (pywinrm's default)."""
READ_TIMEOUT_SECONDS = RECEIVE_WAIT_SECONDS + 10
HOUSEKEEPING_SECONDS = 10
"""How long each clean-up call may take."""
_CLEANUP_RECEIVES = 3

_CLIXML_HEADER = "#< CLIXML"
_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_XML_NAMESPACE = re.compile(r"^\{[^}]*\}")

_PROTOCOL_ERRORS = (
    DestinationDeniedError,
    WinRMError,
    WinRMTransportError,
    requests.RequestException,
    OSError,
    ET.ParseError,
    StopIteration,
    ValueError,
)
"""What talking to a host can raise: a denied destination, HTTP and socket errors, faults, and
answers pywinrm cannot read."""


class WinRmRunError(Exception):
    """The run could not go on: the host is unreachable, refused the login, or answered wrong."""


@dataclass(frozen=True)
class CommandOutcome:
    """How a command ended, its exit code and everything it wrote."""

    ending: Ending
    return_code: int
    stdout: str
    stderr: str


def discard_output(output_type: str, data: str) -> None:
    """An output sink for output that is not the action's."""


def clixml_text(stderr: str) -> str:
    """Return the messages in PowerShell's CLIXML error output, or ``stderr`` if it is not that."""
    if not stderr.startswith(_CLIXML_HEADER):
        return stderr
    _, _, document = stderr.partition("\n")
    try:
        # The host's own answer, parsed as pywinrm parses all of them; expat (2.4 and later)
        # caps entity expansion.
        root = ET.fromstring(document)  # noqa: S314
    except ET.ParseError:
        return stderr
    messages = [
        element.text or ""
        for element in root
        if _XML_NAMESPACE.sub("", element.tag) == "S" and element.text
    ]
    if not messages:
        return stderr
    text = "".join(messages).replace("_x000D__x000A_", "\n")
    return _CLIXML_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text).strip()


def failure_message(error: BaseException, endpoint: str) -> str:
    """Return what went wrong talking to ``endpoint``, in words for the result."""
    if isinstance(error, InvalidCredentialsError):
        return f"WinRM login to {endpoint} failed: the credentials were rejected"
    if isinstance(error, DestinationDeniedError):
        return str(error)
    if isinstance(error, WinRMTransportError):
        answer = error.response_text.strip()[:500]
        return f"WinRM at {endpoint} answered HTTP {error.code}" + (f": {answer}" if answer else "")
    if isinstance(error, requests.ConnectionError | OSError):
        return f"Failed connecting to WinRM at {endpoint}: {error}"
    return f"WinRM at {endpoint} failed: {type(error).__name__}: {error}"


class WinRmSession:
    """Runs commands in one remote shell on one host, within the run's limits."""

    def __init__(
        self,
        settings: ConnectionSettings,
        guard: DestinationGuard,
        limits: RunLimits,
        *,
        cwd: str | None,
        env: dict[str, str],
    ) -> None:
        self._settings = settings
        self._guard = guard
        self._limits = limits
        self._cwd = cwd
        self._env = env
        self._lock = threading.Lock()
        self._connection = self._connect(RECEIVE_WAIT_SECONDS, READ_TIMEOUT_SECONDS)
        self._shell_id: str | None = None
        self._commands: list[str] = []
        self._cleanup: list[str] = []

    def _connect(self, operation_timeout: int, read_timeout: int) -> WinRmConnection:
        return WinRmConnection(
            self._settings,
            self._guard,
            operation_timeout=operation_timeout,
            read_timeout=read_timeout,
        )

    def interrupt(self) -> None:
        """Break off the call in flight; the run then ends as its limits say (from any thread)."""
        with self._lock:
            connection = self._connection
        connection.interrupt()

    def run(self, command: str, output: OutputSink, *, powershell: bool) -> CommandOutcome:
        """Run ``command`` in the shell, stream its output, and return how it ended.

        Raises :class:`WinRmRunError` when the host cannot be reached or talked to; a timeout or
        cancel is an outcome, not an error.
        """
        stdout = LineStream("stdout", output)
        # PowerShell's error stream is CLIXML until it ends: pass it on as text afterwards.
        stderr = LineStream("stderr", discard_output if powershell else output)
        try:
            ending, return_code = self._execute(command, stdout, stderr)
        except _PROTOCOL_ERRORS as error:
            stopped = self._limits.ending()
            if stopped is None:
                raise WinRmRunError(failure_message(error, self._settings.endpoint)) from error
            ending, return_code = stopped, -1
        stdout.close()
        stderr.close()
        error_text = stderr.text()
        if powershell and error_text:
            error_text = clixml_text(error_text)
            output("stderr", error_text)
        return CommandOutcome(ending, return_code, stdout.text(), error_text)

    def _execute(self, command: str, stdout: LineStream, stderr: LineStream) -> tuple[Ending, int]:
        protocol = self._connection.protocol
        stopped = self._limits.ending()
        if stopped is not None:
            return stopped, -1
        if self._shell_id is None:
            self._shell_id = protocol.open_shell(
                working_directory=self._cwd, env_vars=self._env, codepage=UTF8_CODE_PAGE
            )
        command_id = protocol.run_command(self._shell_id, command)
        self._commands.append(command_id)
        while True:
            stopped = self._limits.ending()
            if stopped is not None:
                return stopped, -1
            try:
                out, err, return_code, done = protocol.get_command_output_raw(
                    self._shell_id, command_id
                )
            except WinRMOperationTimeoutError:
                continue
            stdout.feed(out)
            stderr.feed(err)
            if done:
                return Ending.EXITED, return_code

    def on_close(self, command: str) -> None:
        """Run ``command`` in the shell when the session closes, however the run ended."""
        self._cleanup.append(command)

    def close(self) -> None:
        """Terminate the commands, run the clean-up commands and delete the shell; never raise."""
        connection = self._connection
        shell_id = self._shell_id
        if shell_id is not None and connection.interrupted:
            connection.close()
            connection = self._connect(HOUSEKEEPING_SECONDS, HOUSEKEEPING_SECONDS + 1)
            with self._lock:
                self._connection = connection
        try:
            if shell_id is not None:
                self._clean_up(connection.protocol, shell_id)
        finally:
            connection.close()

    def _clean_up(self, protocol: Protocol, shell_id: str) -> None:
        for command_id in self._commands:
            self._housekeeping(
                "terminate signal", partial(protocol.cleanup_command, shell_id, command_id)
            )
        for command in self._cleanup:
            self._housekeeping(
                "clean-up command", partial(_run_to_end, protocol, shell_id, command)
            )
        self._housekeeping("shell deletion", partial(protocol.close_shell, shell_id))

    def _housekeeping(self, purpose: str, call: Callable[[], object]) -> None:
        try:
            call()
        except (*_PROTOCOL_ERRORS, AssertionError) as error:
            # AssertionError: pywinrm asserts that the host's answer relates to the request.
            logger.warning("The WinRM %s failed on %s: %s", purpose, self._settings.endpoint, error)


def _run_to_end(protocol: Protocol, shell_id: str, command: str) -> None:
    """Run a clean-up command, waiting for it a few Receive calls at most; raise if it fails."""
    command_id = protocol.run_command(shell_id, command)
    try:
        for _ in range(_CLEANUP_RECEIVES):
            try:
                _, _, return_code, done = protocol.get_command_output_raw(shell_id, command_id)
            except WinRMOperationTimeoutError:
                continue
            if done and return_code == 0:
                return
            if done:
                raise WinRMError(f"the command exited with {return_code}")
        raise WinRMError("the command did not finish in time")
    finally:
        protocol.cleanup_command(shell_id, command_id)
