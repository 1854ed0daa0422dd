"""A real OpenSSH server on a free loopback port, for the remote shell runner tests.

It runs as the current user with a throwaway host key and one authorised client key, listens on
127.0.0.1 only, and is stopped afterwards. ``scripts/install-test-tools.sh`` installs OpenSSH.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = Path("/usr/bin/ssh-keygen")
INSTALL_HINT = "run scripts/install-test-tools.sh (as root) to install openssh-server"
START_SECONDS = 15.0


@dataclass(frozen=True)
class SshServer:
    """Where the test server listens and how to log in to it."""

    host: str
    port: int
    username: str
    private_key_path: Path
    log_path: Path

    @property
    def private_key(self) -> str:
        return self.private_key_path.read_text()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        [str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "", "-C", "poundcake-test", "-f", str(path)],
        check=True,
    )


def _config(directory: Path, port: int) -> Path:
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {directory / 'host_key'}",
                f"PidFile {directory / 'sshd.pid'}",
                f"AuthorizedKeysFile {directory / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "AllowTcpForwarding yes",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    return config


def _wait_until_ready(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sshd exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                if connection.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"sshd did not answer on 127.0.0.1:{port}:\n{log_path.read_text()}")


@contextmanager
def running_sshd(directory: Path) -> Iterator[SshServer]:
    """Start sshd in ``directory`` and stop it on exit; fail (never skip) when it is missing."""
    for tool in (SSHD, SSH_KEYGEN):
        if not tool.exists():
            pytest.fail(f"{tool} is missing: {INSTALL_HINT}")
    directory.mkdir(parents=True, exist_ok=True)
    _keygen(directory / "host_key")
    _keygen(directory / "client_key")
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    port = _free_port()
    log_path = directory / "sshd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(_config(directory, port))],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_ready(process, port, log_path)
        yield SshServer(
            host="127.0.0.1",
            port=port,
            username=pwd.getpwuid(os.getuid()).pw_name,
            private_key_path=directory / "client_key",
            log_path=log_path,
        )
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
