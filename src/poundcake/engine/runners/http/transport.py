"""An httpx transport whose every TCP connection goes through the destination guard.

The guard resolves the host and the connection is made to the addresses it checked, so a name
cannot resolve to a public address for the check and a private one for the connection (DNS
rebinding). Connections to proxies are checked the same way. :meth:`GuardedTransport.abort`
shuts every open socket down so a blocked request returns at once (cancellation).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator

import httpcore
import httpx

from poundcake.engine.runners.http.guard import DestinationDeniedError, DestinationGuard

# httpcore's exceptions and what httpx calls them, most specific first.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


@contextlib.contextmanager
def _httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except tuple(core for core, _ in _ERRORS) as error:
        for core, mapped in _ERRORS:
            if isinstance(error, core):
                raise mapped(str(error), request=request) from error
        raise


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend, connecting only to addresses the guard allows."""

    def __init__(self, guard: DestinationGuard) -> None:
        self._guard = guard
        self._inner = httpcore.SyncBackend()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._aborted = False

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._guard.addresses(host, port)
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            if self._aborted:
                raise httpcore.ConnectError("the request was canceled")
            try:
                stream = self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as error:
                failure = error
                continue
            self._track(stream)
            return stream
        raise failure or httpcore.ConnectError(f"cannot connect to {host}")

    def _track(self, stream: httpcore.NetworkStream) -> None:
        raw = stream.get_extra_info("socket")
        if isinstance(raw, socket.socket):
            with self._lock:
                self._sockets.append(raw)
                aborted = self._aborted
            if aborted:
                self._shutdown(raw)

    @staticmethod
    def _shutdown(raw: socket.socket) -> None:
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise DestinationDeniedError("Unix socket destinations are not allowed")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)

    def abort(self) -> None:
        """Shut down every socket opened so far and refuse new connections."""
        with self._lock:
            self._aborted = True
            sockets = list(self._sockets)
        for raw in sockets:
            self._shutdown(raw)


def _proxy(url: str | None, ssl_context: ssl.SSLContext) -> httpcore.Proxy | None:
    if not url:
        return None
    parsed = httpx.URL(url)
    auth = (parsed.username, parsed.password) if parsed.username else None
    plain = parsed.copy_with(username=None, password=None)
    return httpcore.Proxy(url=str(plain), auth=auth, ssl_context=ssl_context)


class GuardedTransport(httpx.BaseTransport):
    """A transport for one runner call: connection pool, TLS settings and optional proxy."""

    def __init__(
        self, guard: DestinationGuard, *, verify: bool = True, proxy: str | None = None
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        self._backend = GuardedBackend(guard)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            proxy=_proxy(proxy, ssl_context),
            network_backend=self._backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors(request):
            core_response = self._pool.handle_request(core_request)
            try:
                content = core_response.read()
            finally:
                core_response.close()
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            content=content,
            extensions=core_response.extensions,
        )

    def abort(self) -> None:
        """Interrupt requests in flight (from another thread)."""
        self._backend.abort()

    def close(self) -> None:
        self._pool.close()
