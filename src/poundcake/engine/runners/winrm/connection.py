"""Connections to a WinRM host: pywinrm's protocol over sockets the destination guard checked.

pywinrm speaks WS-Management through a requests session. Here every socket of that session is
opened by a :class:`GuardedDialer`: the host is resolved and each address checked by the http
runner's :class:`DestinationGuard` (with the WinRM runners' own network policy), and the socket
connects to the address that was checked, so a name cannot resolve to one address for the check
and another for the connection. The dialer keeps every socket, so :meth:`WinRmConnection.interrupt`
can shut them down from another thread: a timeout or a cancel breaks off a request that waits on
the host, or a connection still being made, and the connection refuses new requests after that.

Neither proxies nor CA bundles named in the environment are used: certificates are checked
against the CA bundle requests ships (Mozilla's), as StackStorm documents. Authentication is
pywinrm's (basic, NTLM, and Kerberos or CredSSP when their extras are installed), message
encryption included.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from winrm.protocol import Protocol
from winrm.transport import Transport

from poundcake.engine.runners.http.guard import DestinationGuard, IPAddress

_POLL_SECONDS = 0.1
_STILL_CONNECTING = frozenset({0, errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY})


class ConnectionInterruptedError(ConnectionAbortedError):
    """The connection was interrupted (timeout or cancel) and takes no more requests."""


@dataclass(frozen=True)
class ConnectionSettings:
    """Where the WinRM service is and how to log in to it."""

    endpoint: str
    username: str
    password: str = field(repr=False)
    auth_method: str
    verify_ssl_cert: bool


class GuardedDialer:
    """Opens sockets only to addresses the guard allows, and can shut them all down."""

    def __init__(self, guard: DestinationGuard) -> None:
        self._guard = guard
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._interrupted = False

    @property
    def interrupted(self) -> bool:
        """Tell whether :meth:`interrupt` was called."""
        return self._interrupted

    def connect(
        self,
        host: str,
        port: int,
        timeout: float | None,
        options: Sequence[tuple[int, int, int | bytes]] = (),
    ) -> socket.socket:
        """Return a socket connected to one of ``host``'s allowed addresses."""
        failure: OSError | None = None
        for address in self._guard.addresses(host, port):
            try:
                return self._connect_to(address, port, timeout, options)
            except ConnectionInterruptedError:
                raise
            except OSError as error:
                failure = error
        raise failure or OSError(f"cannot connect to {host}")

    def _connect_to(
        self,
        address: IPAddress,
        port: int,
        timeout: float | None,
        options: Sequence[tuple[int, int, int | bytes]],
    ) -> socket.socket:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.track(sock)
            for level, name, value in options:
                sock.setsockopt(level, name, value)
            sock.setblocking(False)
            error = sock.connect_ex((str(address), port))
            if error not in _STILL_CONNECTING:
                raise OSError(error, f"cannot connect to {address} port {port}")
            self._wait_connected(sock, address, port, timeout)
            sock.settimeout(timeout)
            return sock
        except BaseException:
            sock.close()
            raise

    def _wait_connected(
        self, sock: socket.socket, address: IPAddress, port: int, timeout: float | None
    ) -> None:
        """Wait in short steps until ``sock`` connects, fails, times out or is interrupted."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._interrupted:
                raise ConnectionInterruptedError("the connection was interrupted")
            _, writable, failed = select.select([], [sock], [sock], _POLL_SECONDS)
            if self._interrupted:
                raise ConnectionInterruptedError("the connection was interrupted")
            if writable or failed:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise OSError(error, f"cannot connect to {address} port {port}")
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"connecting to {address} port {port} timed out")

    def track(self, sock: socket.socket) -> None:
        """Keep ``sock`` to shut down on :meth:`interrupt`; refuse it if that already happened."""
        with self._lock:
            self._sockets = [kept for kept in self._sockets if kept.fileno() != -1]
            self._sockets.append(sock)
            interrupted = self._interrupted
        if interrupted:
            _shut_down(sock)
            raise ConnectionInterruptedError("the connection was interrupted")

    def interrupt(self) -> None:
        """Shut down every socket opened so far and refuse new ones (from any thread)."""
        with self._lock:
            self._interrupted = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    # socket.socket's own shutdown also for a TLS socket: ssl.SSLSocket.shutdown drops the TLS
    # state that a reading thread is still using.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _dial(dialer: GuardedDialer, connection: HTTPConnection) -> socket.socket:
    """Open the connection's socket; errors as urllib3's own connections raise them."""
    timeout = connection.timeout
    seconds = float(timeout) if isinstance(timeout, int | float) else None
    try:
        return dialer.connect(
            connection.host,
            connection.port or 0,
            seconds,
            list(connection.socket_options or ()),
        )
    except ConnectionInterruptedError:
        raise
    except TimeoutError as error:
        raise ConnectTimeoutError(connection, f"Connection timed out: {error}") from error
    except OSError as error:
        # Wrapped, as urllib3 does: it takes a bare ECONNRESET here for a harmless hang-up.
        message = f"Failed to establish a new connection: {error}"
        raise NewConnectionError(connection, message) from error


def _pool_classes(
    dialer: GuardedDialer,
) -> tuple[type[HTTPConnectionPool], type[HTTPSConnectionPool]]:
    """Connection pool classes whose connections open their sockets through ``dialer``."""

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _dial(dialer, self)

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _dial(dialer, self)

        def connect(self) -> None:
            super().connect()
            if self.sock is not None:
                dialer.track(self.sock)  # the TLS socket that now owns the connection

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return GuardedHTTPConnectionPool, GuardedHTTPSConnectionPool


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connection pools open sockets through a :class:`GuardedDialer`."""

    def __init__(self, dialer: GuardedDialer) -> None:
        self._dialer = dialer
        super().__init__(max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        plain, secure = _pool_classes(self._dialer)
        self.poolmanager.pool_classes_by_scheme = {"http": plain, "https": secure}


def _offers_encryption(auth_method: str, auth: Any) -> bool:
    """Tell whether pywinrm would encrypt messages with this authentication over plain HTTP."""
    if auth_method == "ntlm":
        return hasattr(auth, "session_security")
    if auth_method == "kerberos":
        return bool(getattr(auth, "winrm_encryption_available", False))
    return auth_method == "credssp"


class GuardedTransport(Transport):
    """pywinrm's transport with its requests session on a :class:`GuardedAdapter`."""

    def __init__(self, adapter: GuardedAdapter, **settings: Any) -> None:
        super().__init__(**settings)
        self._adapter = adapter

    def build_session(self) -> requests.Session:
        if self.session is not None:
            return self.session
        # pywinrm sets message encryption up with a request of its own, which must not leave
        # before the guarded adapter is mounted: set it up here afterwards instead.
        wanted = self.message_encryption
        self.message_encryption = "never"
        try:
            session = super().build_session()
        finally:
            self.message_encryption = wanted
        session.trust_env = False
        session.mount("http://", self._adapter)
        session.mount("https://", self._adapter)
        plain_http = not self.endpoint.lower().startswith("https")
        if wanted == "auto" and plain_http and _offers_encryption(self.auth_method, session.auth):
            self.setup_encryption(session)
        return session


class WinRmConnection:
    """pywinrm's protocol to one host through a guarded, interruptible transport."""

    def __init__(
        self,
        settings: ConnectionSettings,
        guard: DestinationGuard,
        *,
        operation_timeout: int,
        read_timeout: int,
    ) -> None:
        self._dialer = GuardedDialer(guard)
        transport_settings: dict[str, Any] = {
            "endpoint": settings.endpoint,
            "username": settings.username,
            "password": settings.password,
            "auth_method": settings.auth_method,
            "server_cert_validation": "validate" if settings.verify_ssl_cert else "ignore",
            "read_timeout_sec": read_timeout,
            "message_encryption": "auto",
            "proxy": None,
            "ca_trust_path": DEFAULT_CA_BUNDLE_PATH,
        }
        self.protocol = Protocol(
            settings.endpoint,
            transport=settings.auth_method,  # type: ignore[arg-type]  # checked by the runner
            username=settings.username,
            password=settings.password,
            server_cert_validation=transport_settings["server_cert_validation"],
            read_timeout_sec=read_timeout,
            operation_timeout_sec=operation_timeout,
            proxy=None,
            ca_trust_path=transport_settings["ca_trust_path"],
        )
        self.protocol.transport = GuardedTransport(
            GuardedAdapter(self._dialer), **transport_settings
        )

    @property
    def interrupted(self) -> bool:
        """Tell whether the connection was interrupted."""
        return self._dialer.interrupted

    def interrupt(self) -> None:
        """Break off any request in flight and refuse new ones (from any thread)."""
        self._dialer.interrupt()

    def close(self) -> None:
        """Close the HTTP session and its sockets."""
        self.protocol.transport.close_session()
