"""StackStorm's ``ParamikoSSHClient`` as packs use it (``linux.wait_for_ssh`` and others), on
the engine's SSH connections (``poundcake.engine.runners.remote.ssh``, real paramiko).

What StackStorm's class offers: ``connect``, ``run`` (with a timeout raising
:class:`SSHCommandTimeoutError`, a pty for ``sudo`` commands, and the per-line output handlers
given to the constructor, called when ``call_line_handler_func=True``), ``close``, and over SFTP
``put``, ``put_dir``, ``exists``, ``mkdir``, ``delete_file`` and ``delete_dir`` (``force=True``
runs ``rm -rf``). As in StackStorm, ``run`` returns ``[stdout, stderr, status]`` with one
trailing newline removed from each stream. Unlike StackStorm, SFTP paths are used as given (it
shell-quotes them, which breaks paths that need quoting), and a line handler gets whole lines
even when a line arrives in several pieces.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import stat
import time
from collections.abc import Callable
from typing import Any

import paramiko

from poundcake.config import load_st2_config
from poundcake.engine.runners.remote.ssh import Credentials, SshConnection

__all__ = ["ParamikoSSHClient", "SSHCommandTimeoutError"]

DEFAULT_PORT = 22
DEFAULT_TIMEOUT = 60.0
# StackStorm's default ``[system_user] ssh_key_file``.
SYSTEM_USER_KEY_FILE = "/home/stanley/.ssh/stanley_rsa"
CHUNK_SIZE = 1024
# How long ``run`` waits for more output before looking again.
IDLE_WAIT = 0.02

LineHandler = Callable[..., Any]


def _system_user() -> tuple[str, str]:
    """Return ``[system_user] user`` and ``ssh_key_file`` from the engine's st2.conf."""
    config = load_st2_config()
    key_file = config.sections.get("system_user", {}).get("ssh_key_file", SYSTEM_USER_KEY_FILE)
    return config.system_user, key_file


def _strip_last_newline(text: str) -> str:
    """StackStorm's ``strip_shell_chars``: one trailing ``\\n``, then one ``\\r``."""
    text = text[:-1] if text.endswith("\n") else text
    return text[:-1] if text.endswith("\r") else text


class SSHCommandTimeoutError(Exception):
    """A command run with a timeout did not finish in time; carries what it wrote so far."""

    def __init__(
        self,
        cmd: str,
        timeout: float,
        ssh_connect_timeout: float,
        stdout: str | None = None,
        stderr: str | None = None,
    ) -> None:
        self.cmd = cmd
        self.timeout = timeout
        self.ssh_connect_timeout = ssh_connect_timeout
        self.stdout = stdout
        self.stderr = stderr
        self.message = (
            f"Command didn't finish in {timeout} seconds or the SSH connection did not succeed "
            f"in {ssh_connect_timeout} seconds"
        )
        super().__init__(self.message)


class _Stream:
    """One output stream of a command: everything it wrote, and its whole lines for a handler."""

    def __init__(self, handler: LineHandler | None) -> None:
        self._handler = handler
        self._chunks: list[str] = []
        self._partial = ""

    def feed(self, data: bytes, *, final: bool = False) -> None:
        text = data.decode("utf-8", errors="replace")
        self._chunks.append(text)
        if self._handler is None:
            return
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        if final and self._partial:
            lines.append(self._partial)
            self._partial = ""
        for line in lines:
            if line.rstrip("\r"):
                self._handler(line=line.rstrip("\r") + "\n")

    def text(self, *, uses_pty: bool) -> str:
        output = _strip_last_newline("".join(self._chunks))
        return output.replace("\r\n", "\n") if uses_pty else output


class ParamikoSSHClient:
    """An SSH client to one host, as StackStorm's runners and packs use it."""

    def __init__(
        self,
        hostname: str,
        port: int = DEFAULT_PORT,
        username: str | None = None,
        password: str | None = None,
        bastion_host: str | None = None,
        key_files: str | None = None,
        key_material: str | None = None,
        timeout: float | None = None,
        passphrase: str | None = None,
        handle_stdout_line_func: LineHandler | None = None,
        handle_stderr_line_func: LineHandler | None = None,
    ) -> None:
        default_user, default_key = _system_user()
        self.hostname = hostname
        self.port = int(port or DEFAULT_PORT)
        self.username = username or default_user
        self.password = password
        self.key_files = key_files
        self.key_material = key_material
        if not (password or key_files or key_material):
            self.key_files = default_key
        self.bastion_host = bastion_host
        self.timeout = float(timeout or DEFAULT_TIMEOUT)
        self.ssh_connect_timeout = self.timeout
        self.passphrase = passphrase
        self._handle_stdout_line_func = handle_stdout_line_func
        self._handle_stderr_line_func = handle_stderr_line_func
        self._connection: SshConnection | None = None
        self.sftp_client: paramiko.SFTPClient | None = None

    def connect(self) -> bool:
        """Connect and authenticate; raise if either fails."""
        credentials = Credentials(
            self.username,
            password=self.password,
            private_key=self.key_material or self.key_files,
            passphrase=self.passphrase,
        )
        bastion = (self.bastion_host, DEFAULT_PORT) if self.bastion_host else None
        self.close()
        self._connection = SshConnection.open(
            self.hostname, self.port, credentials, timeout=self.timeout, bastion=bastion
        )
        return True

    def _connected(self) -> SshConnection:
        if self._connection is None:
            self.connect()
        assert self._connection is not None
        return self._connection

    # --- commands -------------------------------------------------------------------------

    def run(
        self,
        cmd: str,
        timeout: float | None = None,
        quote: bool = False,
        call_line_handler_func: bool = False,
    ) -> list[Any]:
        """Run ``cmd``; return ``[stdout, stderr, exit_status]``. ``quote`` shell-quotes the
        whole command, as StackStorm's does."""
        if quote:
            cmd = shlex.quote(cmd)
        channel = self._connected().transport().open_session()
        uses_pty = cmd.startswith("sudo")
        if uses_pty:
            channel.get_pty()
        channel.exec_command(cmd)
        channel.shutdown_write()  # no input: an interactive command must not wait for any
        stdout = _Stream(self._handle_stdout_line_func if call_line_handler_func else None)
        stderr = _Stream(self._handle_stderr_line_func if call_line_handler_func else None)
        try:
            self._collect(channel, stdout, stderr, cmd=cmd, timeout=timeout, uses_pty=uses_pty)
            status = channel.recv_exit_status()
        finally:
            channel.close()
        return [stdout.text(uses_pty=uses_pty), stderr.text(uses_pty=uses_pty), status]

    def _collect(
        self,
        channel: paramiko.Channel,
        stdout: _Stream,
        stderr: _Stream,
        *,
        cmd: str,
        timeout: float | None,
        uses_pty: bool,
    ) -> None:
        """Read both streams until the command exits and its output is drained."""
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            exited = channel.exit_status_ready()
            read = False
            while channel.recv_ready():
                stdout.feed(channel.recv(CHUNK_SIZE))
                read = True
            while channel.recv_stderr_ready():
                stderr.feed(channel.recv_stderr(CHUNK_SIZE))
                read = True
            if exited and not read:
                stdout.feed(b"", final=True)
                stderr.feed(b"", final=True)
                return
            if deadline is not None and time.monotonic() > deadline:
                raise SSHCommandTimeoutError(
                    cmd=cmd,
                    timeout=timeout or 0,
                    ssh_connect_timeout=self.ssh_connect_timeout,
                    stdout=stdout.text(uses_pty=uses_pty),
                    stderr=stderr.text(uses_pty=uses_pty),
                )
            if not read:
                time.sleep(IDLE_WAIT)

    # --- files over SFTP ----------------------------------------------------------------------

    @property
    def sftp(self) -> paramiko.SFTPClient:
        """The SFTP session, opened on first use."""
        if self.sftp_client is None:
            self.sftp_client = self._connected().client.open_sftp()
        return self.sftp_client

    def put(
        self,
        local_path: str,
        remote_path: str,
        mode: int | str | None = None,
        mirror_local_mode: bool = False,
    ) -> paramiko.SFTPAttributes:
        """Upload a file; ``mode`` (an int or an octal string) or the local file's mode is set
        on the remote file. Return the remote file's attributes."""
        if not local_path or not remote_path:
            raise ValueError(
                f"Need both local_path and remote_path. local: {local_path}, remote: {remote_path}"
            )
        if not os.path.exists(local_path):
            raise FileNotFoundError(f"Path {local_path} does not exist locally.")
        attributes = self.sftp.put(local_path, remote_path)
        if mode or mirror_local_mode:
            wanted = os.stat(local_path).st_mode if mirror_local_mode or not mode else mode
            wanted = (int(wanted, 8) if isinstance(wanted, str) else wanted) & 0o7777
            current = attributes.st_mode & 0o7777 if attributes.st_mode is not None else None
            if wanted != current:
                self.sftp.chmod(remote_path, wanted)
                attributes.st_mode = stat.S_IFREG | wanted
        return attributes

    def put_dir(
        self,
        local_path: str,
        remote_path: str,
        mode: int | str | None = None,
        mirror_local_mode: bool = False,
    ) -> list[paramiko.SFTPAttributes]:
        """Upload a directory (its last component and everything under it) into
        ``remote_path``; return the attributes of each file created."""
        stripped = local_path.rstrip(os.sep)
        base = os.path.dirname(stripped)
        uploaded = []
        for directory, subdirectories, files in os.walk(stripped):
            relative = os.path.relpath(directory, base).replace(os.sep, "/")
            target = posixpath.join(remote_path, relative)
            for name in ("", *subdirectories):
                path = posixpath.join(target, name) if name else target
                if not self.exists(path):
                    self.sftp.mkdir(path)
            for name in files:
                uploaded.append(
                    self.put(
                        os.path.join(directory, name),
                        posixpath.join(target, name),
                        mode=mode,
                        mirror_local_mode=mirror_local_mode,
                    )
                )
        return uploaded

    def exists(self, remote_path: str) -> bool:
        """Tell whether a remote file or directory exists."""
        try:
            self.sftp.lstat(remote_path)
        except OSError:
            return False
        return True

    def mkdir(self, dir_path: str) -> None:
        """Create a remote directory; raise OSError if it cannot be created."""
        self.sftp.mkdir(dir_path)

    def delete_file(self, path: str) -> bool:
        """Delete a remote file; raise OSError if it cannot be deleted."""
        self.sftp.unlink(path)
        return True

    def delete_dir(self, path: str, force: bool = False, timeout: float | None = None) -> Any:
        """Delete an empty remote directory; with ``force``, run ``rm -rf`` on it and return
        ``run``'s result, as StackStorm does."""
        if force:
            return self.run(f"rm -rf {shlex.quote(path)}", timeout=timeout)
        self.sftp.rmdir(path)
        return True

    def close(self) -> bool:
        """Close the SFTP session and the connection, if open."""
        if self.sftp_client is not None:
            self.sftp_client.close()
            self.sftp_client = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return True
