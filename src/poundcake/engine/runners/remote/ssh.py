"""SSH connections for the remote shell runners, with paramiko, directly or through a bastion.

Authentication follows StackStorm: a password when one is given, else the private key (key
material, recognised by its ``-----BEGIN`` header, or a path to a key file) with its optional
passphrase, else the SSH agent and the default key files. The bastion is reached with the same
credentials and the target through a ``direct-tcpip`` channel on it.

Host keys are accepted without checking, as StackStorm does: there is no ``known_hosts`` setting
yet, so this trusts the network between the engine and its targets.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import paramiko

from poundcake.exceptions import ValidationError

_KEY_TYPES: tuple[type[paramiko.PKey], ...] = (
    paramiko.Ed25519Key,
    paramiko.ECDSAKey,
    paramiko.RSAKey,
)


@dataclass(frozen=True)
class Credentials:
    """Who to log in as, and how."""

    username: str
    password: str | None = None
    private_key: str | None = None
    passphrase: str | None = None


def is_key_material(private_key: str) -> bool:
    """Tell key material (a PEM or OpenSSH block) from a path to a key file."""
    return "-----BEGIN" in private_key


def load_key_material(material: str, passphrase: str | None) -> paramiko.PKey:
    """Return the private key in ``material``, trying each key type paramiko supports."""
    for key_type in _KEY_TYPES:
        try:
            return key_type.from_private_key(io.StringIO(material), password=passphrase)
        except paramiko.SSHException:
            continue
    reason = "invalid passphrase or unsupported key" if passphrase else "unsupported key"
    raise ValidationError(f'"private_key" could not be loaded: {reason}')


class SshConnection:
    """An SSH client to one host, and the bastion client it goes through, if any."""

    def __init__(self, client: paramiko.SSHClient, bastion: paramiko.SSHClient | None) -> None:
        self.client = client
        self._bastion = bastion

    @classmethod
    def open(
        cls,
        hostname: str,
        port: int,
        credentials: Credentials,
        *,
        timeout: float,
        bastion: tuple[str, int] | None = None,
    ) -> SshConnection:
        """Connect and authenticate, waiting at most ``timeout`` seconds for each step."""
        bastion_client = None
        sock = None
        if bastion is not None:
            bastion_client = _connect(*bastion, credentials, timeout=timeout)
            transport = bastion_client.get_transport()
            if transport is None:
                bastion_client.close()
                raise paramiko.SSHException(f"bastion {bastion[0]} closed the connection")
            sock = transport.open_channel(
                "direct-tcpip", (hostname, port), ("", 0), timeout=timeout
            )
        try:
            client = _connect(hostname, port, credentials, timeout=timeout, sock=sock)
        except BaseException:
            if bastion_client is not None:
                bastion_client.close()
            raise
        return cls(client, bastion_client)

    def transport(self) -> paramiko.Transport:
        """Return the live transport, or raise SSHException when the connection is gone."""
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise paramiko.SSHException("the SSH connection is closed")
        return transport

    def close(self) -> None:
        """Close the connection and the bastion connection."""
        self.client.close()
        if self._bastion is not None:
            self._bastion.close()


def _connect(
    hostname: str,
    port: int,
    credentials: Credentials,
    *,
    timeout: float,
    sock: paramiko.Channel | None = None,
) -> paramiko.SSHClient:
    password = credentials.password or None
    key = credentials.private_key if not password else None
    pkey = load_key_material(key, credentials.passphrase) if key and is_key_material(key) else None
    key_filename = key if key and pkey is None else None
    use_defaults = not (password or key)
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 - see module doc
    try:
        client.connect(
            hostname,
            port,
            username=credentials.username,
            password=password,
            pkey=pkey,
            key_filename=key_filename,
            passphrase=credentials.passphrase if key_filename else None,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            allow_agent=use_defaults,
            look_for_keys=use_defaults,
            sock=sock,
        )
    except BaseException:
        client.close()
        raise
    return client
