"""The ``http-request`` runner (``core.http``): one HTTP request, StackStorm's result shape.

Result: ``{"status_code", "body" (parsed when the response is JSON), "parsed", "headers"}``; a 2xx
status succeeds, anything else fails. A request that times out ends in ``timeout``; one that
cannot connect, or whose destination the guard denies, fails with ``result.error``. Redirects
are followed only with ``allow_redirects``, hop by hop, each hop checked like the first.
"""

from __future__ import annotations

import ast
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from poundcake import __version__
from poundcake.config import load_st2_config
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import (
    OutputSink,
    Runner,
    RunnerOutcome,
    RunnerRequest,
    RunnerServices,
)
from poundcake.engine.runners.http.guard import (
    DestinationDeniedError,
    DestinationGuard,
    NetworkPolicy,
    Resolver,
    network_policy_from_config,
    resolve,
)
from poundcake.engine.runners.http.transport import GuardedTransport
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)

METHODS = ("HEAD", "GET", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH", "PURGE")
DEFAULT_TIMEOUT = 60.0
MAX_REDIRECTS = 30
USER_AGENT = f"poundcake/{__version__}"


class _RequestError(ValueError):
    """The request cannot be built from the parameters given."""


@dataclass
class _Hop:
    """One request of a possibly redirected exchange."""

    method: str
    url: httpx.URL
    content: bytes | None = None
    data: dict[str, Any] | None = None
    files: dict[str, Any] | None = None


def _is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def _response_headers(response: httpx.Response) -> dict[str, str]:
    """Headers with the server's spelling; repeated headers joined with ``, `` as requests does."""
    headers: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for raw_name, raw_value in response.headers.raw:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        key = spelled.setdefault(name.lower(), name)
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _parse_body(response: httpx.Response) -> tuple[Any, bool]:
    text = response.text
    if not _is_json(response.headers.get("content-type")):
        return text, False
    try:
        return json.loads(text), True
    except ValueError:
        return text, False


def _json_body(body: Any) -> bytes:
    """Encode a body for a JSON request; strings may be JSON or a Python literal, as in st2."""
    if isinstance(body, str):
        try:
            json.loads(body)
            return body.encode("utf-8")
        except ValueError:
            try:
                body = ast.literal_eval(body)
            except (ValueError, SyntaxError):
                raise _RequestError(f"Request body ({body}) can't be parsed as JSON") from None
    try:
        return json.dumps(body).encode("utf-8")
    except (TypeError, ValueError):
        raise _RequestError(f"Request body ({body!r}) can't be encoded as JSON") from None


def _display(url: httpx.URL) -> str:
    return str(url.copy_with(username=None, password=None))


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _without_authorization(headers: dict[str, str]) -> dict[str, str]:
    """Credentials meant for the first host are not sent on to another one."""
    return {name: value for name, value in headers.items() if name.lower() != "authorization"}


class HttpRequestRunner(Runner):
    """Sends one HTTP request, following redirects only when asked and only where allowed."""

    runner_type = "http-request"

    def __init__(
        self,
        request: RunnerRequest,
        output: OutputSink,
        services: RunnerServices | None = None,
        *,
        network_policy: NetworkPolicy | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        super().__init__(request, output, services)
        self._network_policy = network_policy
        self._resolver = resolver
        self._lock = threading.Lock()
        self._transports: list[GuardedTransport] = []
        self._canceled = False

    def _param(self, name: str, default: Any = None) -> Any:
        """An action parameter, else the runner parameter of that name, else ``default``."""
        for source in (self.request.action_parameters, self.request.runner_parameters):
            value = source.get(name)
            if value is not None:
                return value
        return default

    def _policy(self) -> NetworkPolicy:
        if self._network_policy is not None:
            return self._network_policy
        if self.services.config_file is not None:
            return network_policy_from_config(load_st2_config(self.services.config_file))
        return NetworkPolicy()

    def pre_run(self) -> None:
        url = self._param("url")
        if not url or not isinstance(url, str):
            raise ValidationError("The url parameter is required.")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as error:
            raise ValidationError(f"url is not a valid URL: {error}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValidationError(f'url must be an http:// or https:// URL (got "{url}").')
        method = self._param("method")
        if method is not None and str(method).upper() not in METHODS:
            raise ValidationError(f'method must be one of {", ".join(METHODS)} (got "{method}").')
        if self._param("url_hosts_blacklist") and self._param("url_hosts_whitelist"):
            raise ValidationError(
                '"url_hosts_blacklist" and "url_hosts_whitelist" parameters are mutually '
                "exclusive. Only one should be provided."
            )
        timeout = self._param("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValidationError(
                f"timeout must be a positive number of seconds (got {timeout!r})."
            )
        for name in ("http_proxy", "https_proxy"):
            proxy = self._param(name)
            if proxy and httpx.URL(str(proxy)).scheme not in ("http", "https"):
                raise ValidationError(f"{name} must be an http:// or https:// URL.")

    def _guard(self) -> DestinationGuard:
        return DestinationGuard.build(
            self._policy(),
            whitelist=self._param("url_hosts_whitelist") or (),
            blacklist=self._param("url_hosts_blacklist") or (),
            resolver=self._resolver,
        )

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for source in (self.request.runner_parameters, self.request.action_parameters):
            headers.update({str(k): str(v) for k, v in (source.get("headers") or {}).items()})
        if _header(headers, "user-agent") is None:
            headers["User-Agent"] = USER_AGENT
        headers["X-Stanley-Action"] = self.request.action_ref.partition(".")[2]
        auth = self._param("auth")
        if auth:
            name, separator, value = str(auth).partition("=")
            if not separator or not name.strip():
                raise _RequestError(
                    "auth must look like 'header-name=value' (e.g. x-auth-token=XYZ)"
                )
            headers[name.strip()] = value
        return headers

    def _first_hop(self, headers: dict[str, str]) -> _Hop:
        body = self._param("body")
        file_name = self._param("file_name")
        file_content = self._param("file_content")
        if self._param("file_path") and file_content is None:
            raise _RequestError(
                "file_path is read by the client (st2 run ... @file_path=...); "
                "send file_name and file_content instead"
            )
        files = None
        if file_name and file_content is not None:
            file_type = self._param("file_content_type")
            files = {
                file_name: (file_name, file_content, file_type)
                if file_type
                else (file_name, file_content)
            }
        method = str(self._param("method") or ("POST" if files or body else "GET")).upper()
        url = httpx.URL(self._param("url"))
        if self._param("params"):
            url = url.copy_merge_params(self._param("params"))
        hop = _Hop(method=method, url=url, files=files)
        if body is None or body == "":
            return hop
        if _is_json(_header(headers, "content-type")):
            hop.content = _json_body(body)
        elif isinstance(body, Mapping):
            hop.data = dict(body)
        elif files is not None:
            raise _RequestError("body must be an object when a file is uploaded")
        elif isinstance(body, str | bytes):
            hop.content = body.encode("utf-8") if isinstance(body, str) else body
        else:
            hop.content = json.dumps(body).encode("utf-8")
        return hop

    def _client(self, guard: DestinationGuard) -> httpx.Client:
        verify = bool(self._param("verify_ssl_cert", True))
        mounts: dict[str, httpx.BaseTransport | None] = {}
        for scheme in ("http", "https"):
            transport = GuardedTransport(guard, verify=verify, proxy=self._param(f"{scheme}_proxy"))
            with self._lock:
                self._transports.append(transport)
                canceled = self._canceled
            if canceled:
                transport.abort()
            mounts[f"{scheme}://"] = transport
        return httpx.Client(
            mounts=mounts,
            transport=mounts["http://"],
            cookies=self._param("cookies") or None,
            follow_redirects=False,
            trust_env=False,
        )

    def _auth(self) -> httpx.BasicAuth | None:
        username, password = self._param("username"), self._param("password")
        if username or password:
            return httpx.BasicAuth(str(username or ""), str(password or ""))
        return None

    def run(self) -> RunnerOutcome:
        try:
            headers = self._headers()
            hop = self._first_hop(headers)
        except _RequestError as error:
            return RunnerOutcome(ExecutionStatus.FAILED, {"error": str(error)})
        guard = self._guard()
        timeout = float(self._param("timeout", DEFAULT_TIMEOUT))
        try:
            with self._client(guard) as client:
                response = self._exchange(client, guard, hop, headers, timeout)
        except DestinationDeniedError as error:
            return self._failure(ExecutionStatus.FAILED, str(error))
        except httpx.TimeoutException as error:
            return self._failure(ExecutionStatus.TIMEOUT, f"Request timed out: {error}")
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as error:
            return self._failure(ExecutionStatus.FAILED, f"{type(error).__name__}: {error}")
        with self._lock:
            if self._canceled:
                return RunnerOutcome(
                    ExecutionStatus.CANCELED, {"error": "The request was canceled."}
                )
        body, parsed = _parse_body(response)
        result = {
            "status_code": response.status_code,
            "body": body,
            "parsed": parsed,
            "headers": _response_headers(response),
        }
        succeeded = 200 <= response.status_code < 300
        return RunnerOutcome(
            ExecutionStatus.SUCCEEDED if succeeded else ExecutionStatus.FAILED, result
        )

    def _failure(self, status: ExecutionStatus, error: str) -> RunnerOutcome:
        with self._lock:
            if self._canceled:
                return RunnerOutcome(
                    ExecutionStatus.CANCELED, {"error": "The request was canceled."}
                )
        return RunnerOutcome(status, {"error": error})

    def _exchange(
        self,
        client: httpx.Client,
        guard: DestinationGuard,
        hop: _Hop,
        headers: dict[str, str],
        timeout: float,
    ) -> httpx.Response:
        deadline = time.monotonic() + (self.request.timeout or float("inf"))
        origin = _origin(hop.url)
        auth = self._auth()
        allow_redirects = bool(self._param("allow_redirects", False))
        for redirects in range(MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise httpx.TimeoutException("the execution timeout passed during redirects")
            same_origin = _origin(hop.url) == origin
            try:
                self._check_hop(guard, hop.url)
                request = client.build_request(
                    hop.method,
                    hop.url,
                    headers=headers if same_origin else _without_authorization(headers),
                    content=hop.content,
                    data=hop.data,
                    files=hop.files,
                    timeout=min(timeout, remaining),
                )
                response = client.send(request, auth=auth if same_origin else None)
            except DestinationDeniedError as error:
                if redirects:
                    raise DestinationDeniedError(
                        f'Redirect to "{_display(hop.url)}" denied. {error}'
                    ) from None
                raise
            if not (allow_redirects and response.is_redirect):
                return response
            hop = self._redirected(hop, response)
            logger.debug("Following a %s redirect to %s", response.status_code, _display(hop.url))
        raise httpx.TooManyRedirects(f"Exceeded {MAX_REDIRECTS} redirects.")

    def _check_hop(self, guard: DestinationGuard, url: httpx.URL) -> None:
        if url.scheme not in ("http", "https"):
            raise DestinationDeniedError(
                f'Redirect to "{_display(url)}": only http and https are allowed'
            )
        guard.check_url_host(url.host)
        if self._param(f"{url.scheme}_proxy"):
            # Through a proxy the connection goes to the proxy, so check the target here.
            guard.addresses(url.host, url.port or (443 if url.scheme == "https" else 80))

    @staticmethod
    def _redirected(hop: _Hop, response: httpx.Response) -> _Hop:
        url = response.url.join(response.headers["location"])
        status = response.status_code
        keeps_method = status in (307, 308) or hop.method == "HEAD"
        if keeps_method or (status == 301 and hop.method != "POST"):
            return _Hop(
                method=hop.method, url=url, content=hop.content, data=hop.data, files=hop.files
            )
        return _Hop(method="GET", url=url)

    def cancel(self) -> None:
        with self._lock:
            self._canceled = True
            transports = list(self._transports)
        for transport in transports:
            transport.abort()
