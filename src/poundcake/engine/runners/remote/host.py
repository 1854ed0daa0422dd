"""One host's part of a remote shell run: connect, upload, run and stream, stop, clean up.

Every host of a run shares one :class:`RunLimits`: the run's deadline and its stop event. A host
that reaches either kills its remote process group (see :mod:`.commands`), closes its channel
and reports a timeout or a cancel; a host the run never got to reports the same without
connecting.
"""

from __future__ import annotations

import logging
import secrets
import select
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from poundcake.engine.runners.base import OutputSink
from poundcake.engine.runners.remote.commands import (
    REMOTE_KILL_GRACE_SECONDS,
    announced,
    kill_group_command,
    remove_directory_command,
    shell_command,
    split_host_port,
)
from poundcake.engine.runners.remote.ssh import Credentials, SshConnection
from poundcake.engine.runners.shell.output import LineStream
from poundcake.engine.runners.shell.process import Ending
from poundcake.engine.runners.shell.results import (
    CANCELED_ERROR,
    TIMEOUT_RETURN_CODE,
    shell_result,
    sudo_password_error,
    timeout_error,
)
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 60.0
"""The longest a connection may take when the run has more time than that, or no limit."""

HOUSEKEEPING_TIMEOUT_SECONDS = 10.0
"""The longest the remote kill and clean-up commands may take."""

ERROR_RETURN_CODE = 255
"""A host StackStorm could not reach or run on reports this, as ssh itself does."""
CANCELED_RETURN_CODE = -signal.SIGTERM
SCRIPT_MODE = 0o744
SCRIPT_DIRECTORY_MODE = 0o700

_POLL_SECONDS = 0.1
_CHUNK_BYTES = 32 * 1024
_SSH_ERRORS = (paramiko.SSHException, OSError, EOFError)


class RunLimits:
    """The deadline and stop event every host of one run shares."""

    def __init__(self, timeout: float | None, stop: threading.Event) -> None:
        self.timeout = timeout
        self.stop = stop
        self._deadline = time.monotonic() + timeout if timeout else None

    def expired(self) -> bool:
        """Tell whether the deadline has passed."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    def within(self, seconds: float) -> float:
        """Return ``seconds``, or less when the deadline is nearer (never below a millisecond)."""
        if self._deadline is None:
            return seconds
        return max(0.001, min(seconds, self._deadline - time.monotonic()))

    def ending(self) -> Ending | None:
        """Return CANCELED or TIMED_OUT when the run must stop, else ``None``."""
        if self.stop.is_set():
            return Ending.CANCELED
        if self.expired():
            return Ending.TIMED_OUT
        return None


@dataclass(frozen=True)
class ScriptUpload:
    """A local script to copy into a directory of its own on the host before the command runs."""

    local_path: Path
    remote_dir: str
    remote_path: str


@dataclass(frozen=True)
class HostJob:
    """What to do on every host: the command line, and the script to upload first, if any."""

    command: str
    credentials: Credentials
    port: int
    bastion: tuple[str, int] | None = None
    sudo: bool = False
    sudo_password: str | None = None
    upload: ScriptUpload | None = None

    def stdin_data(self) -> bytes | None:
        """Return what the remote command reads on stdin: the sudo password, if one is used."""
        if self.sudo and self.sudo_password:
            return f"{self.sudo_password}\n".encode()
        return None


@dataclass(frozen=True)
class HostOutcome:
    """How the run ended on one host, and that host's result document."""

    hostname: str
    ending: Ending
    result: dict[str, Any]


class _GroupAnnouncement:
    """Takes the remote shell's ``marker<pid>`` line out of stderr and keeps the pid."""

    def __init__(self) -> None:
        self.marker = f"poundcake-pgid-{secrets.token_hex(8)}:"
        self.pgid: int | None = None

    def keep(self, line: str) -> bool:
        if self.pgid is None and line.startswith(self.marker):
            pid = line[len(self.marker) :].strip()
            if pid.isdigit():
                self.pgid = int(pid)
                return False
        return True


class HostRun:
    """Runs a :class:`HostJob` on one host within the shared :class:`RunLimits`."""

    def __init__(self, host: str, job: HostJob, output: OutputSink, limits: RunLimits) -> None:
        self.hostname, self.port = split_host_port(host, job.port)
        self._job = job
        self._output = output
        self._limits = limits

    def run(self) -> HostOutcome:
        """Do the job on this host and return its outcome; SSH errors become failed results."""
        ending = self._limits.ending()
        if ending is not None:
            return self.stopped(ending)
        try:
            connection = SshConnection.open(
                self.hostname,
                self.port,
                self._job.credentials,
                timeout=self._limits.within(CONNECT_TIMEOUT_SECONDS),
                bastion=self._job.bastion,
            )
        except (*_SSH_ERRORS, ValidationError) as error:
            return self._failure(f"Failed connecting to host {self.hostname}.", error)
        try:
            return self._run_on(connection)
        finally:
            connection.close()

    def stopped(self, ending: Ending) -> HostOutcome:
        """Return the outcome of this host when the run stopped before it finished."""
        return self._outcome(ending, TIMEOUT_RETURN_CODE, "", "")

    def _run_on(self, connection: SshConnection) -> HostOutcome:
        ending = self._limits.ending()
        if ending is not None:
            return self.stopped(ending)
        upload = self._job.upload
        if upload is None:
            return self._execute(connection)
        try:
            self._upload(connection, upload)
        except _SSH_ERRORS as error:
            self._remove_upload(connection, upload)
            return self._failure("Failed copying content to remote boxes.", error)
        try:
            return self._execute(connection)
        finally:
            self._remove_upload(connection, upload)

    def _upload(self, connection: SshConnection, upload: ScriptUpload) -> None:
        with connection.client.open_sftp() as sftp:
            channel = sftp.get_channel()
            if channel is not None:
                channel.settimeout(self._limits.within(HOUSEKEEPING_TIMEOUT_SECONDS))
            sftp.mkdir(upload.remote_dir, mode=SCRIPT_DIRECTORY_MODE)
            sftp.put(str(upload.local_path), upload.remote_path)
            sftp.chmod(upload.remote_path, SCRIPT_MODE)

    def _remove_upload(self, connection: SshConnection, upload: ScriptUpload) -> None:
        command = remove_directory_command(upload.remote_dir)
        self._housekeeping(connection, "script clean-up", command)

    def _execute(self, connection: SshConnection) -> HostOutcome:
        announcement = _GroupAnnouncement()
        stdout = LineStream("stdout", self._output)
        stderr = LineStream("stderr", self._output, keep=announcement.keep)
        try:
            channel = connection.transport().open_session(
                timeout=self._limits.within(CONNECT_TIMEOUT_SECONDS)
            )
        except _SSH_ERRORS as error:
            return self._failure(f"Failed opening a session on host {self.hostname}.", error)
        with channel:
            try:
                channel.exec_command(announced(self._job.command, announcement.marker))
                _send_stdin(channel, self._job.stdin_data())
                ending = self._pump(channel, stdout, stderr)
            except _SSH_ERRORS as error:
                message = f"Failed executing the command on host {self.hostname}."
                return self._failure(message, error)
            if ending is not Ending.EXITED and announcement.pgid is not None:
                self._kill_group(connection, announcement.pgid)
            return_code = channel.recv_exit_status() if ending is Ending.EXITED else -1
        stdout.close()
        stderr.close()
        return self._outcome(ending, return_code, stdout.text(), stderr.text())

    def _pump(self, channel: paramiko.Channel, stdout: LineStream, stderr: LineStream) -> Ending:
        """Pass output on until the command has exited and closed its output, or must stop."""
        while True:
            finished = channel.exit_status_ready() and bool(channel.eof_received or channel.closed)
            while channel.recv_ready():
                stdout.feed(channel.recv(_CHUNK_BYTES))
            while channel.recv_stderr_ready():
                stderr.feed(channel.recv_stderr(_CHUNK_BYTES))
            if finished:
                return Ending.EXITED
            ending = self._limits.ending()
            if ending is not None:
                return ending
            pause = self._limits.within(_POLL_SECONDS)
            if channel.eof_received:
                # A closed stream keeps the channel readable; sleep instead of spinning.
                self._limits.stop.wait(pause)
            else:
                select.select([channel], [], [], pause)

    def _kill_group(self, connection: SshConnection, pgid: int) -> None:
        command = shell_command(
            kill_group_command(pgid),
            env={},
            cwd=None,
            sudo=self._job.sudo,
            sudo_password=bool(self._job.sudo_password),
        )
        wait = REMOTE_KILL_GRACE_SECONDS + HOUSEKEEPING_TIMEOUT_SECONDS
        self._housekeeping(
            connection, "process group kill", command, stdin=self._job.stdin_data(), wait=wait
        )

    def _housekeeping(
        self,
        connection: SshConnection,
        purpose: str,
        command: str,
        *,
        stdin: bytes | None = None,
        wait: float = HOUSEKEEPING_TIMEOUT_SECONDS,
    ) -> None:
        """Run a command of our own on the host and wait a bounded time; log failures."""
        try:
            with connection.transport().open_session(timeout=wait) as channel:
                channel.exec_command(command)
                _send_stdin(channel, stdin)
                if not channel.status_event.wait(wait):
                    logger.warning("%s did not finish on %s", purpose, self.hostname)
                elif channel.recv_exit_status() != 0:
                    logger.warning("%s failed on %s", purpose, self.hostname)
        except _SSH_ERRORS:
            logger.warning("could not run the %s on %s", purpose, self.hostname)

    def _outcome(self, ending: Ending, return_code: int, stdout: str, stderr: str) -> HostOutcome:
        if ending is Ending.TIMED_OUT:
            error = timeout_error(self._limits.timeout or 0)
            result = shell_result(TIMEOUT_RETURN_CODE, stdout, stderr, error=error)
        elif ending is Ending.CANCELED:
            result = shell_result(CANCELED_RETURN_CODE, stdout, stderr, error=CANCELED_ERROR)
        else:
            sudo_error = sudo_password_error(stderr) if self._job.stdin_data() else None
            if sudo_error is not None:
                return_code = -1
            result = shell_result(return_code, stdout, stderr, error=sudo_error)
        return HostOutcome(self.hostname, ending, result)

    def _failure(self, message: str, error: BaseException) -> HostOutcome:
        ending = self._limits.ending()
        if ending is not None:
            return self.stopped(ending)
        logger.warning("%s %s", message, error)
        result = shell_result(ERROR_RETURN_CODE, "", "", error=f"{message} {error}")
        return HostOutcome(self.hostname, Ending.EXITED, result)


def _send_stdin(channel: paramiko.Channel, data: bytes | None) -> None:
    """Send ``data`` (if any) and end the command's stdin, so nothing waits for input."""
    if data:
        channel.sendall(data)
    channel.shutdown_write()
