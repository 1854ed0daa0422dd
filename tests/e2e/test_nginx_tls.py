"""HTTPS as StackStorm serves it: Debian's nginx runs ``deploy/nginx/poundcake.conf`` with a
self-signed certificate in front of the whole product, and everything here goes through it
over HTTPS only: the official ``st2`` CLI (``--cacert``, ``https://host/api``, ``/auth``,
``/stream``), the engine's event stream, the web UI in Chromium, the HTTP redirect, each path's
service, and the answer when a service is down."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests import alertmanager
from tests.e2e.stack import TOKEN, Product, running_product
from tests.e2e.tls_proxy import (
    SHIPPED_UPSTREAMS,
    Certificate,
    Proxy,
    running_nginx,
    self_signed,
)
from tests.e2e.web_browser import (
    USERNAME,
    Served,
    browser_page,
    chromium,
    create_login,
    log_in_and_wait,
)
from tests.integration.support.st2cli import (
    PASSWORD,
    USER,
    CliResult,
    RunningEngine,
    St2,
    free_port,
)

OUTPUT_EVENTS = "st2.execution.output__create,st2.execution__update"
FINISHED = {"succeeded", "failed", "timeout", "canceled", "abandoned"}
GATE_POLLS = 1200  # 0.05 s apart: the gated command gives up after a minute


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    with running_product(tmp_path_factory.mktemp("nginx-product"), {}) as running:
        create_login(running)
        yield running


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("nginx-tls"))


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, product: Product, certificate: Certificate
) -> Iterator[Proxy]:
    engine = product.engine
    upstreams = {
        "poundcake_api": f"127.0.0.1:{product.api_port}",
        "st2api": f"127.0.0.1:{engine.api_port}",
        "st2auth": f"127.0.0.1:{engine.auth_port}",
        "st2stream": f"127.0.0.1:{engine.stream_port}",
    }
    with running_nginx(tmp_path_factory.mktemp("nginx"), certificate, upstreams) as running:
        yield running


class St2OverHttps(St2):
    """The official CLI that knows the engine only as nginx's ``https://`` addresses."""

    def __init__(self, engine: RunningEngine, home: Path, proxy: Proxy, cacert: Path) -> None:
        super().__init__(engine, home)
        for direct in ("ST2_API_URL", "ST2_AUTH_URL", "ST2_STREAM_URL"):
            del self.env[direct]
        self.options = [
            "--cacert",
            str(cacert),
            "--api-url",
            f"{proxy.url}/api",
            "--auth-url",
            f"{proxy.url}/auth",
            "--stream-url",
            f"{proxy.url}/stream",
        ]

    def __call__(self, *args: str, timeout: float = 120, stdin: str | None = None) -> CliResult:
        return super().__call__(*self.options, *args, timeout=timeout, stdin=stdin)


def https(proxy: Proxy) -> httpx.Client:
    """An HTTP client that trusts the test certificate only."""
    return httpx.Client(base_url=proxy.url, verify=proxy.certificate.client_context(), timeout=30)


def test_the_st2_cli_logs_in_lists_and_runs_through_nginx(
    product: Product, proxy: Proxy, certificate: Certificate, tmp_path: Path
) -> None:
    st2 = St2OverHttps(product.engine, tmp_path / "home", proxy, certificate.certificate)
    st2.login()

    listed = st2("action", "list", "--pack", "core", "-j")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "core.noop" in {action["ref"] for action in json.loads(listed.stdout)}

    ran = st2("run", "core.local", "cmd=echo served-through-nginx", "-j")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    execution = json.loads(ran.stdout)
    assert execution["status"] == "succeeded"
    assert execution["result"]["stdout"] == "served-through-nginx"

    # --tail follows the execution over the CLI's stream_url (/stream, server-sent events).
    tailed = st2("run", "--tail", "core.local", "cmd=echo tailed-through-nginx", timeout=60)
    assert tailed.returncode == 0, tailed.stdout + tailed.stderr
    assert re.search(r"^tailed-through-nginx$", tailed.stdout, re.MULTILINE), tailed.stdout
    assert re.search(r"Execution \w{24} has completed \(status=succeeded\)\.", tailed.stdout)

    log = proxy.access_log()
    for request in (
        "POST /auth/tokens ",
        "GET /api/actions?",
        "POST /api/executions ",
        "GET /stream/stream?",
    ):
        assert f'"{request}' in log, f"nginx saw no {request!r}"


def test_the_st2_cli_refuses_a_certificate_its_cacert_does_not_vouch_for(
    product: Product, proxy: Proxy, tmp_path: Path
) -> None:
    stranger = self_signed(tmp_path / "other-ca", "stranger")
    st2 = St2OverHttps(product.engine, tmp_path / "home", proxy, stranger.certificate)
    refused = st2("auth", USER, "-p", PASSWORD, "-t")
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stdout + refused.stderr


def gated_command(gate: Path) -> str:
    """Prints ``first``, waits for ``gate`` to exist, prints ``second``."""
    wait = (
        f"opened=no; for _ in $(seq {GATE_POLLS}); do "
        f"if [ -e {gate} ]; then opened=yes; break; fi; sleep 0.05; done; "
        '[ "$opened" = yes ] || echo gate-timeout'
    )
    return f"echo first; {wait}; echo second"


def frames(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """The (event, data) frames of a server-sent event stream; heartbeats are skipped."""
    name = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name is not None:
            yield name, json.loads(line.removeprefix("data: "))
            name = None


def test_execution_events_arrive_over_the_stream_while_it_runs(
    proxy: Proxy, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    with https(proxy) as client:
        login = client.post("/auth/v1/tokens", auth=(USER, PASSWORD), json={})
        assert login.status_code == 201, login.text
        token = login.json()["token"]
        params = {"events": OUTPUT_EVENTS, "x-auth-token": token}
        with client.stream("GET", "/stream/v1/stream", params=params, timeout=90) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            started = client.post(
                "/api/v1/executions",
                headers={"X-Auth-Token": token},
                json={"action": "core.local", "parameters": {"cmd": gated_command(gate)}},
            )
            assert started.status_code == 201, started.text
            execution_id = started.json()["id"]
            output, status = "", "requested"
            for name, data in frames(stream):
                if name == "st2.execution.output__create" and data["execution_id"] == execution_id:
                    output += data["data"]
                    # "second" can only come once "first" arrived here: nginx did not hold it.
                    if output == "first\n":
                        gate.touch()
                elif name == "st2.execution__update" and data["id"] == execution_id:
                    status = data["status"]
                    if status in FINISHED:
                        break
    assert (status, output) == ("succeeded", "first\nsecond\n")


def test_http_is_redirected_to_https(proxy: Proxy) -> None:
    response = httpx.get(f"{proxy.http_url}/api/v1/actions?limit=1", timeout=30)
    assert response.status_code == 308
    assert response.headers["location"] == f"{proxy.url}/api/v1/actions?limit=1"


def test_each_path_reaches_its_service(proxy: Proxy) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with https(proxy) as client:
        engine = client.get("/api/v1/actions")
        assert engine.status_code == 401
        assert "faultstring" in engine.json()
        assert engine.headers["strict-transport-security"] == "max-age=63072000"
        page = client.get("/")
        assert page.status_code == 200
        assert "<title>PoundCake</title>" in page.text
        assert client.get("/metrics").status_code == 404
        # StackStorm's older stream address is rewritten to /stream/v1/stream.
        login = client.post("/auth/tokens", auth=(USER, PASSWORD), json={})
        assert login.status_code == 201, login.text
        params = {"x-auth-token": login.json()["token"]}
        with client.stream("GET", "/api/v1/stream", params=params) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
        # Alertmanager may post through nginx: /webhook is poundcake-api's intake, and
        # PoundCake's REST API (/api/v1 on poundcake-api) is at /poundcake/api/v1.
        labels = {"alertname": "NginxPathCheck", "severity": "info", "instance": "web-1"}
        alert = alertmanager.notification(labels, fingerprint="5e6f7a8b9c0d1e2f")
        delivered = client.post("/webhook", json=alert, headers=bearer)
        assert delivered.status_code == 202, delivered.text
        request_id = delivered.json()["request_id"]
        trail = client.get(f"/poundcake/api/v1/requests/{request_id}", headers=bearer)
        assert trail.status_code == 200, trail.text
        [stored] = trail.json()["trail"]["alerts"]
        assert stored["labels"]["instance"] == "web-1"


@pytest.fixture(scope="module")
def browser(certificate: Certificate) -> Iterator[Browser]:
    trusted = f"--ignore-certificate-errors-spki-list={certificate.spki_sha256()}"
    with chromium([trusted]) as launched:
        yield launched


def test_the_web_ui_logs_in_through_nginx_in_chromium(
    browser: Browser, product: Product, proxy: Proxy
) -> None:
    served = Served()
    with browser_page(browser, served) as (context, page):
        page.goto(f"{proxy.http_url}/")
        expect(page).to_have_url(re.compile(rf"^{re.escape(proxy.url)}/"))
        # The live status needs the UI's event stream through nginx.
        log_in_and_wait(page, product, base_url=proxy.url)
        expect(page.get_by_text(f"Signed in as {USERNAME}")).to_be_visible()
        [cookie] = [c for c in context.cookies() if c["name"] == "poundcake_session"]
        assert cookie["secure"] is True
        assert cookie["httpOnly"] is True
    served.assert_never_contained(product.api_key)


def test_a_service_that_is_down_is_named_in_a_503(certificate: Certificate, tmp_path: Path) -> None:
    nobody = {name: f"127.0.0.1:{free_port()}" for name in SHIPPED_UPSTREAMS}
    with running_nginx(tmp_path / "nginx", certificate, nobody) as down, https(down) as client:
        for path, service in (("/api/v1/actions", "st2api"), ("/auth/tokens", "st2auth")):
            answer = client.get(path)
            assert answer.status_code == 503
            assert answer.headers["content-type"] == "application/json"
            assert service in answer.json()["faultstring"]
        stream = client.get("/stream/v1/stream")
        assert stream.status_code == 200
        assert stream.text == "retry: 1000\n\n"
