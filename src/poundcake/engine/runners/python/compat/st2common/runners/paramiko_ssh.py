"""StackStorm's ``ParamikoSSHClient`` as packs use it (``linux.wait_for_ssh``): connect, run a
command, close; on the engine's SSH connections (``poundcake.engine.runners.remote.ssh``).

Not provided: file transfer (``put``, ``put_dir``, ``get``, ``mkdir``, ``delete_*``) and the
per-line output handlers; calling them raises ``NotImplementedError`` naming them.
"""

from __future__ import annotations

from typing import Any

from poundcake.config import load_st2_config
from poundcake.engine.runners.remote.ssh import Credentials, SshConnection

__all__ = ["ParamikoSSHClient"]

DEFAULT_PORT = 22
DEFAULT_TIMEOUT = 60.0
# StackStorm's default ``[system_user] ssh_key_file``.
SYSTEM_USER_KEY_FILE = "/home/stanley/.ssh/stanley_rsa"


def _system_user() -> tuple[str, str]:
    """Return ``[system_user] user`` and ``ssh_key_file`` from the engine's st2.conf."""
    config = load_st2_config()
    key_file = config.sections.get("system_user", {}).get("ssh_key_file", SYSTEM_USER_KEY_FILE)
    return config.system_user, key_file


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
        handle_stdout_line_func: Any = None,
        handle_stderr_line_func: Any = None,
    ) -> None:
        if handle_stdout_line_func or handle_stderr_line_func:
            raise NotImplementedError(
                "ParamikoSSHClient: handle_stdout_line_func and handle_stderr_line_func are not "
                "supported here."
            )
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
        self.passphrase = passphrase
        self._connection: SshConnection | None = None

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

    def run(self, cmd: str, timeout: float | None = None) -> tuple[str, str, int]:
        """Run ``cmd`` on the host; return ``(stdout, stderr, exit_status)``."""
        if self._connection is None:
            self.connect()
        assert self._connection is not None
        _, stdout, stderr = self._connection.client.exec_command(cmd, timeout=timeout)
        output = stdout.read().decode("utf-8", errors="replace")
        errors = stderr.read().decode("utf-8", errors="replace")
        return output, errors, stdout.channel.recv_exit_status()

    def close(self) -> bool:
        """Close the connection, if open."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        return True

    def __getattr__(self, name: str) -> Any:
        if name in {"put", "put_dir", "get", "mkdir", "delete_file", "delete_dir", "exists"}:
            raise NotImplementedError(f"ParamikoSSHClient.{name} is not supported here.")
        raise AttributeError(name)
