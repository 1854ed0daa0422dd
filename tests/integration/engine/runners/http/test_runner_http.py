"""The http-request runner against a real HTTP server on 127.0.0.1, and its SSRF guard."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import RunnerOutcome, RunnerRequest, RunnerServices
from poundcake.engine.runners.http.guard import NetworkPolicy
from poundcake.engine.runners.http.runner import HttpRequestRunner
from poundcake.engine.runners.registry import runner_class, runner_types
from poundcake.exceptions import ValidationError
from poundcake.ids import new_id

LOOPBACK = NetworkPolicy.parse("127.0.0.0/8, ::1/128")


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    proxied: bool


@dataclass
class Server:
    port: int
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def make_handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def reply(
            self, status: int, body: bytes, content_type: str, extra: list[tuple[str, str]]
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            target = urlsplit(self.path)
            seen = Seen(
                method=self.command,
                path=target.path,
                query=parse_qs(target.query),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                proxied=bool(target.scheme),
            )
            server.seen.append(seen)
            self.route(seen, target.path.strip("/").split("/"))

        def route(self, seen: Seen, parts: list[str]) -> None:
            document = {
                "method": seen.method,
                "path": seen.path,
                "query": seen.query,
                "headers": seen.headers,
                "body": seen.body.decode("utf-8", "replace"),
                "proxied": seen.proxied,
            }
            json_type = "application/json; charset=utf-8"
            if parts[0] == "status":
                payload = json.dumps({"code": int(parts[1])}).encode()
                self.reply(int(parts[1]), payload, json_type, [])
            elif parts[0] == "redirect":
                location = seen.query["to"][0]
                self.reply(int(parts[1]), b"", "text/plain", [("Location", location)])
            elif parts[0] == "loop":
                self.reply(302, b"", "text/plain", [("Location", "/loop")])
            elif parts[0] == "auth":
                expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
                ok = seen.headers.get("authorization") == expected
                self.reply(200 if ok else 401, json.dumps({"ok": ok}).encode(), json_type, [])
            elif parts[0] == "text":
                self.reply(200, b"plain text", "text/plain", [])
            elif parts[0] == "bad-json":
                self.reply(200, b"{not json", "application/json", [])
            elif parts[0] == "cookies":
                cookies = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
                self.reply(200, b"{}", "application/problem+json", cookies)
            elif parts[0] == "slow":
                server.release.wait(float(seen.query["seconds"][0]))
                self.reply(200, b"{}", json_type, [])
            else:
                self.reply(200, json.dumps(document).encode(), json_type, [])

        def __getattr__(self, name: str) -> Any:
            # http.server calls do_<METHOD>; every method gets the same handling here.
            if name.startswith("do_"):
                return self.handle_any
            raise AttributeError(name)

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(port=0)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


def make_runner(
    url: str,
    *,
    policy: NetworkPolicy | None = LOOPBACK,
    action: dict[str, Any] | None = None,
    services: RunnerServices | None = None,
    **runner_parameters: Any,
) -> HttpRequestRunner:
    request = RunnerRequest(
        execution_id=new_id(),
        action_ref="core.http",
        pack="core",
        runner_type="http-request",
        runner_parameters={"url": url, **runner_parameters},
        action_parameters=action or {},
    )
    return HttpRequestRunner(request, lambda kind, data: None, services, network_policy=policy)


def run_http(url: str, **kwargs: Any) -> RunnerOutcome:
    runner = make_runner(url, **kwargs)
    runner.pre_run()
    outcome = runner.run()
    runner.post_run(outcome)
    return outcome


def test_registered_as_http_request() -> None:
    spec = runner_types()["http-request"]
    assert spec.output_key == "body"
    parameters = spec.runner_parameters
    assert parameters["url"]["required"] is True
    assert parameters["password"]["secret"] is True
    assert parameters["allow_redirects"]["default"] is False
    assert parameters["verify_ssl_cert"]["default"] is True
    assert set(parameters) == {
        "url",
        "headers",
        "cookies",
        "username",
        "password",
        "allow_redirects",
        "verify_ssl_cert",
        "http_proxy",
        "https_proxy",
        "url_hosts_blacklist",
        "url_hosts_whitelist",
    }
    assert runner_class("http-request") is HttpRequestRunner


def test_get_with_query_and_headers(server: Server) -> None:
    outcome = run_http(
        server.url("/echo"),
        headers={"X-Team": "sre"},
        action={"params": {"q": "a b"}, "headers": {"X-Extra": "1"}},
    )
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    result = outcome.result
    assert result["status_code"] == 200
    assert result["parsed"] is True
    assert result["body"]["method"] == "GET"
    assert result["body"]["query"] == {"q": ["a b"]}
    assert result["headers"]["Content-Type"] == "application/json; charset=utf-8"
    seen = server.seen[0].headers
    assert seen["x-team"] == "sre"
    assert seen["x-extra"] == "1"
    assert seen["user-agent"].startswith("poundcake/")
    assert seen["x-stanley-action"] == "http"


@pytest.mark.parametrize(
    "method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PURGE"]
)
def test_methods(server: Server, method: str) -> None:
    outcome = run_http(server.url("/echo"), action={"method": method.lower()})
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert [seen.method for seen in server.seen] == [method]


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValidationError, match="method must be one of"):
        make_runner("http://127.0.0.1:1/", action={"method": "FETCH"}).pre_run()


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        ({"a": 1, "b": [True, None]}, {"a": 1, "b": [True, None]}),
        ('{"a": 1}', {"a": 1}),
        ("{'a': 1, 'b': True}", {"a": 1, "b": True}),
    ],
)
def test_json_bodies(server: Server, body: object, sent: object) -> None:
    outcome = run_http(
        server.url("/echo"), headers={"Content-Type": "application/json"}, action={"body": body}
    )
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert server.seen[0].method == "POST"
    assert json.loads(server.seen[0].body) == sent


def test_a_body_that_is_not_json_fails_before_sending(server: Server) -> None:
    outcome = run_http(
        server.url("/echo"),
        headers={"content-type": "application/json"},
        action={"body": "not json at all"},
    )
    assert outcome.status is ExecutionStatus.FAILED
    assert "can't be parsed as JSON" in outcome.result["error"]
    assert server.seen == []


def test_form_and_raw_bodies(server: Server) -> None:
    run_http(server.url("/echo"), action={"body": {"a": "1", "b": "x y"}, "method": "PUT"})
    assert server.seen[0].headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(server.seen[0].body.decode()) == {"a": ["1"], "b": ["x y"]}
    run_http(server.url("/echo"), headers={"Content-Type": "text/plain"}, action={"body": "raw"})
    assert (server.seen[1].method, server.seen[1].body) == ("POST", b"raw")


def test_file_upload(server: Server) -> None:
    outcome = run_http(
        server.url("/echo"),
        action={
            "file_name": "report.txt",
            "file_content": "hello file",
            "file_content_type": "text/plain",
        },
    )
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    seen = server.seen[0]
    assert seen.method == "POST"
    assert seen.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="report.txt"; filename="report.txt"' in seen.body
    assert b"Content-Type: text/plain" in seen.body
    assert b"hello file" in seen.body


def test_file_path_alone_is_not_read_on_the_engine(server: Server) -> None:
    outcome = run_http(server.url("/echo"), action={"file_path": "/etc/passwd"})
    assert outcome.status is ExecutionStatus.FAILED
    assert "file_path is read by the client" in outcome.result["error"]
    assert server.seen == []


def test_basic_auth(server: Server) -> None:
    good = run_http(server.url("/auth"), username="alice", password="s3cret")
    assert good.status is ExecutionStatus.SUCCEEDED
    assert good.result["body"] == {"ok": True}
    bad = run_http(server.url("/auth"), username="alice", password="wrong")
    assert bad.status is ExecutionStatus.FAILED
    assert bad.result["status_code"] == 401
    assert bad.result["body"] == {"ok": False}


def test_auth_parameter_sets_a_header(server: Server) -> None:
    run_http(server.url("/echo"), action={"auth": "x-auth-token=XYZ"})
    assert server.seen[0].headers["x-auth-token"] == "XYZ"
    outcome = run_http(server.url("/echo"), action={"auth": "no-separator"})
    assert outcome.status is ExecutionStatus.FAILED
    assert "header-name=value" in outcome.result["error"]


@pytest.mark.parametrize("code", [201, 204, 299])
def test_2xx_succeeds(server: Server, code: int) -> None:
    outcome = run_http(server.url(f"/status/{code}"))
    assert outcome.status is ExecutionStatus.SUCCEEDED
    assert outcome.result["status_code"] == code


@pytest.mark.parametrize("code", [400, 404, 500, 503])
def test_non_2xx_fails_with_the_response(server: Server, code: int) -> None:
    outcome = run_http(server.url(f"/status/{code}"))
    assert outcome.status is ExecutionStatus.FAILED
    assert outcome.result["status_code"] == code
    assert outcome.result["body"] == {"code": code}
    assert outcome.result["parsed"] is True


def test_bodies_are_parsed_only_when_json(server: Server) -> None:
    text = run_http(server.url("/text"))
    assert (text.result["body"], text.result["parsed"]) == ("plain text", False)
    broken = run_http(server.url("/bad-json"))
    assert (broken.result["body"], broken.result["parsed"]) == ("{not json", False)
    assert broken.status is ExecutionStatus.SUCCEEDED


def test_repeated_response_headers_are_joined(server: Server) -> None:
    outcome = run_http(server.url("/cookies"))
    assert outcome.result["headers"]["Set-Cookie"] == "a=1, b=2"
    assert outcome.result["parsed"] is True


def test_redirects_are_not_followed_by_default(server: Server) -> None:
    target = server.url("/echo")
    outcome = run_http(server.url(f"/redirect/302?to={target}"))
    assert outcome.status is ExecutionStatus.FAILED
    assert outcome.result["status_code"] == 302
    assert outcome.result["headers"]["Location"] == target
    assert len(server.seen) == 1


def test_redirects_are_followed_when_allowed(server: Server) -> None:
    outcome = run_http(
        server.url("/redirect/303?to=/echo"),
        allow_redirects=True,
        action={"method": "POST", "body": "payload"},
    )
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert [(seen.method, seen.path, seen.body) for seen in server.seen] == [
        ("POST", "/redirect/303", b"payload"),
        ("GET", "/echo", b""),
    ]


def test_307_keeps_the_method_and_body(server: Server) -> None:
    run_http(
        server.url("/redirect/307?to=/echo"),
        allow_redirects=True,
        action={"method": "POST", "body": "payload"},
    )
    assert [(seen.method, seen.body) for seen in server.seen] == [
        ("POST", b"payload"),
        ("POST", b"payload"),
    ]


def test_credentials_stay_with_their_origin(server: Server) -> None:
    same = server.url("/echo")
    run_http(
        server.url(f"/redirect/302?to={same}"),
        allow_redirects=True,
        username="alice",
        password="s3cret",
    )
    assert "authorization" in server.seen[1].headers
    other = server.url("/echo", host="localhost")
    outcome = run_http(
        server.url(f"/redirect/302?to={other}"),
        allow_redirects=True,
        username="alice",
        password="s3cret",
        headers={"Authorization": "Bearer abc"},
    )
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert "authorization" in server.seen[2].headers
    assert "authorization" not in server.seen[3].headers


def test_redirect_loops_end(server: Server) -> None:
    outcome = run_http(server.url("/loop"), allow_redirects=True)
    assert outcome.status is ExecutionStatus.FAILED
    assert "Exceeded 30 redirects" in outcome.result["error"]


# --- the SSRF guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1", "0x7f000001", "2130706433", "[::ffff:127.0.0.1]", "localhost"]
)
def test_loopback_is_denied_by_default(server: Server, host: str) -> None:
    outcome = run_http(server.url("/echo", host=host), policy=None)
    assert outcome.status is ExecutionStatus.FAILED
    assert "loopback" in outcome.result["error"]
    assert "denied" in outcome.result["error"]
    assert server.seen == []


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/",
    ],
)
def test_redirect_to_the_metadata_service_is_denied(server: Server, target: str) -> None:
    outcome = run_http(server.url(f"/redirect/302?to={target}"), allow_redirects=True)
    assert outcome.status is ExecutionStatus.FAILED
    assert outcome.result["error"].startswith(f'Redirect to "{target}" denied.')
    assert "link-local" in outcome.result["error"]
    assert len(server.seen) == 1


def test_redirect_to_another_scheme_is_denied(server: Server) -> None:
    outcome = run_http(server.url("/redirect/302?to=file:///etc/passwd"), allow_redirects=True)
    assert outcome.status is ExecutionStatus.FAILED
    assert "only http and https" in outcome.result["error"]


def test_whitelist_allows_exact_hosts_only(server: Server) -> None:
    allowed = run_http(
        server.url("/echo", host="127.1"), policy=None, url_hosts_whitelist=["127.0.0.1"]
    )
    assert allowed.status is ExecutionStatus.SUCCEEDED, allowed.result
    other = run_http(
        server.url("/echo", host="localhost"), policy=None, url_hosts_whitelist=["127.0.0.1"]
    )
    assert other.status is ExecutionStatus.FAILED
    assert "not whitelisted" in other.result["error"]
    hop = run_http(
        server.url(f"/redirect/302?to={server.url('/echo', host='localhost')}"),
        policy=None,
        url_hosts_whitelist=["127.0.0.1"],
        allow_redirects=True,
    )
    assert hop.status is ExecutionStatus.FAILED
    assert "not whitelisted" in hop.result["error"]
    assert len(server.seen) == 2


def test_blacklist_matches_any_spelling(server: Server) -> None:
    outcome = run_http(server.url("/echo", host="0x7f000001"), url_hosts_blacklist=["127.0.0.1"])
    assert outcome.status is ExecutionStatus.FAILED
    assert "blacklisted" in outcome.result["error"]
    assert server.seen == []
    with pytest.raises(ValidationError, match="mutually exclusive"):
        make_runner(server.url("/"), url_hosts_blacklist=["a"], url_hosts_whitelist=["b"]).pre_run()


def test_engine_wide_allow_list_from_st2_conf(server: Server, tmp_path: Path) -> None:
    conf = tmp_path / "st2.conf"
    conf.write_text("[http_runner]\nallowed_networks = 127.0.0.0/8\n")
    services = RunnerServices(config_file=conf)
    outcome = run_http(server.url("/echo"), policy=None, services=services)
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    conf.write_text("[http_runner]\nallowed_networks = 10.0.0.0/8\n")
    outcome = run_http(server.url("/echo"), policy=None, services=services)
    assert outcome.status is ExecutionStatus.FAILED
    assert len(server.seen) == 1


def test_proxy_is_used_and_internal_targets_stay_denied(server: Server) -> None:
    proxy = server.url("")
    outcome = run_http("http://93.184.216.34/echo", http_proxy=proxy)
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert server.seen[0].proxied
    assert outcome.result["body"]["path"] == "/echo"
    denied = run_http("http://10.1.2.3/echo", http_proxy=proxy)
    assert denied.status is ExecutionStatus.FAILED
    assert "10.1.2.3" in denied.result["error"]
    assert "private" in denied.result["error"]
    refused = run_http("http://93.184.216.34/echo", http_proxy=proxy, policy=None)
    assert refused.status is ExecutionStatus.FAILED
    assert "loopback" in refused.result["error"]
    assert len(server.seen) == 1


# --- failures, timeouts and cancellation ----------------------------------------------------------


def test_connection_refused_fails_with_an_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = run_http(f"http://127.0.0.1:{port}/")
    assert outcome.status is ExecutionStatus.FAILED
    assert outcome.result["error"].startswith("ConnectError:")


def test_request_timeout(server: Server) -> None:
    started = time.monotonic()
    outcome = run_http(server.url("/slow?seconds=5"), action={"timeout": 0.5})
    assert time.monotonic() - started < 4
    assert outcome.status is ExecutionStatus.TIMEOUT
    assert "timed out" in outcome.result["error"]


def test_cancel_interrupts_a_request_in_flight(server: Server) -> None:
    runner = make_runner(server.url("/slow?seconds=20"))
    runner.pre_run()

    def cancel_when_seen() -> None:
        deadline = time.monotonic() + 10
        while not server.seen and time.monotonic() < deadline:
            time.sleep(0.02)
        runner.cancel()

    canceller = threading.Thread(target=cancel_when_seen)
    canceller.start()
    started = time.monotonic()
    outcome = runner.run()
    canceller.join()
    assert time.monotonic() - started < 5
    assert outcome.status is ExecutionStatus.CANCELED
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "url parameter is required"),
        ("ftp://127.0.0.1/file", "http:// or https://"),
        ("http://", "http:// or https://"),
    ],
)
def test_bad_urls_are_refused(url: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_runner(url).pre_run()  # type: ignore[arg-type]
