"""The command lines the remote shell runners send over SSH, built as StackStorm builds them.

A command becomes ``export K=V ... && cd <cwd> && { <command> }``; with sudo, that line runs as
``sudo -E -- bash -c '<line>'`` (``-S`` too when a sudo password is sent on stdin). Every word
that comes from a parameter is shell-quoted. Before the command, the remote login shell writes
its process id on stderr behind a marker line: sshd makes that shell a process group leader, so
a timeout or cancel can kill the whole remote group, not only close the channel.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping

from poundcake.exceptions import ValidationError

DEFAULT_SSH_PORT = 22
REMOTE_KILL_GRACE_SECONDS = 1

_BRACKETED = re.compile(r"^\[(?P<host>[^\]]+)\](?::(?P<port>\d+))?$")


def parse_hosts(hosts: str) -> list[str]:
    """Split StackStorm's comma-separated ``hosts`` parameter into host entries."""
    return [host.strip() for host in hosts.split(",") if host.strip()]


def split_host_port(host: str, default_port: int) -> tuple[str, int]:
    """Return ``(hostname, port)`` for ``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    bracketed = _BRACKETED.match(host)
    if bracketed:
        port = bracketed.group("port")
        return bracketed.group("host"), int(port) if port else default_port
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        if not port.isdigit():
            raise ValidationError(f'Host "{host}" has an invalid port')
        return name, int(port)
    return host, default_port


def export_prefix(env: Mapping[str, str]) -> str:
    """Return ``export K=V ...`` for ``env``, sorted and quoted, or an empty string."""
    if not env:
        return ""
    pairs = " ".join(
        f"{shlex.quote(name)}={shlex.quote(value)}" for name, value in sorted(env.items())
    )
    return f"export {pairs}"


def shell_command(
    command: str,
    *,
    env: Mapping[str, str],
    cwd: str | None,
    sudo: bool,
    sudo_password: bool,
) -> str:
    """Return the line that runs ``command`` with ``env`` in ``cwd``, through sudo if asked."""
    setup = [part for part in (export_prefix(env), f"cd {shlex.quote(cwd)}" if cwd else "") if part]
    # Braces keep a command such as "a & b" whole: the setup must apply to all of it.
    line = " && ".join([*setup, f"{{\n{command}\n}}"]) if setup else command
    if not sudo:
        return line
    flags = "-S -E" if sudo_password else "-E"
    return f"sudo {flags} -- bash -c {shlex.quote(line)}"


def announced(command: str, marker: str) -> str:
    """Prefix ``command`` with a line on stderr: ``marker`` followed by the shell's pid."""
    return f"printf '%s%s\\n' {shlex.quote(marker)} \"$$\" >&2; {command}"


def kill_group_command(pgid: int) -> str:
    """Return a command that sends the process group SIGTERM, then SIGKILL after a grace."""
    group = f"-{int(pgid)}"
    return (
        f"kill -TERM -- {group} 2>/dev/null; sleep {REMOTE_KILL_GRACE_SECONDS}; "
        f"kill -KILL -- {group} 2>/dev/null; true"
    )


def remote_script_path(remote_dir: str, execution_id: str, local_name: str) -> tuple[str, str]:
    """Return the per-execution directory and the script path inside it on the remote host."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", execution_id) or execution_id in {".", ".."}:
        raise ValidationError(f'Execution id "{execution_id}" cannot name a remote directory')
    directory = posixpath.join(remote_dir, execution_id)
    return directory, posixpath.join(directory, posixpath.basename(local_name))


def remove_directory_command(directory: str) -> str:
    """Return a command that removes ``directory`` and everything in it."""
    return f"rm -rf -- {shlex.quote(directory)}"
