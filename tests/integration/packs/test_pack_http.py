"""The bundled ``http``, ``slack`` and ``jenkins`` packs through the real engine and ``st2`` CLI,
against one local HTTP server that speaks a plain echo API, Slack's webhook and Web API
protocols and Jenkins's REST API (crumbs, queue items, builds)."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import yaml

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.packs.locations import BUNDLED_PACKS_DIR
from poundcake.engine.runners.base import RunnerRequest
from poundcake.engine.runners.registry import runner_class
from poundcake.ids import new_id
from tests.integration.support import pack_actions as actions
from tests.integration.support.pack_actions import engine_api
from tests.integration.support.st2cli import RunningEngine, St2, logged_in, running_engine

PASSWORD = "basic-pa55word"
BEARER = "bearer-t0ken-xyz"
BOT_TOKEN = "xoxb-bot-t0ken"
JENKINS_TOKEN = "jenkins-api-t0ken"
CRUMB = "crumb-4a5b6c"
SECRETS = (PASSWORD, BEARER, BOT_TOKEN, JENKINS_TOKEN, "/services/T000/B000/")


class Handler(BaseHTTPRequestHandler):
    """Routes a request to the API it imitates; every request is recorded on the server."""

    server: PeerServer

    def log_message(self, *_: Any) -> None:
        return

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        is_text = isinstance(body, str)
        data = body.encode() if is_text else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if is_text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        url = urllib.parse.urlsplit(self.path)
        request = {
            "method": self.command,
            "path": url.path,
            "query": dict(urllib.parse.parse_qsl(url.query)),
            "headers": {name.lower(): value for name, value in self.headers.items()},
            "body": body,
        }
        self.server.requests.append(request)
        for prefix, route in (
            ("/echo", self.echo),
            ("/services/", self.slack_webhook),
            ("/api/", self.slack_api),
            ("/jenkins/", self.jenkins),
        ):
            if url.path.startswith(prefix):
                route(request)
                return
        self.reply(404, "no such page")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any  # noqa: N815 - http.server names

    def echo(self, request: dict[str, Any]) -> None:
        status = int(request["query"].get("status", 200))
        # Credentials stay on the server's record, as a real API does not send them back.
        headers = {k: v for k, v in request["headers"].items() if k != "authorization"}
        self.reply(status, {**request, "headers": headers})

    def slack_webhook(self, request: dict[str, Any]) -> None:
        if request["path"] != "/services/T000/B000/good":
            self.reply(404, "no_service")
            return
        try:
            payload = json.loads(request["body"])
        except ValueError:
            payload = {}
        if not payload.get("text"):
            self.reply(400, "invalid_payload")
            return
        self.reply(200, "ok")

    def slack_api(self, request: dict[str, Any]) -> None:
        if request["path"] != "/api/chat.postMessage":
            self.reply(404, {"ok": False, "error": "unknown_method"})
            return
        if request["headers"].get("authorization") != f"Bearer {BOT_TOKEN}":
            self.reply(200, {"ok": False, "error": "invalid_auth"})
            return
        payload = json.loads(request["body"])
        if payload["channel"] != "#ops":
            self.reply(200, {"ok": False, "error": "channel_not_found"})
            return
        self.reply(200, {"ok": True, "channel": "C024BE91L", "ts": "1700000000.000100"})

    def jenkins(self, request: dict[str, Any]) -> None:
        expected = base64.b64encode(f"ci-bot:{JENKINS_TOKEN}".encode()).decode()
        if request["headers"].get("authorization") != f"Basic {expected}":
            self.reply(401, "Unauthorized")
            return
        path = request["path"].removeprefix("/jenkins")
        base = f"http://127.0.0.1:{self.server.server_port}/jenkins"
        jobs = {"deploy": "SUCCESS", "folder/job/flaky": "FAILURE"}
        if path == "/crumbIssuer/api/json":
            self.reply(200, {"crumbRequestField": "Jenkins-Crumb", "crumb": CRUMB})
            return
        for number, (job, outcome) in enumerate(jobs.items(), start=1):
            if path in (f"/job/{job}/build", f"/job/{job}/buildWithParameters"):
                if request["headers"].get("jenkins-crumb") != CRUMB:
                    self.reply(403, "No valid crumb was included in the request")
                    return
                self.reply(201, "", {"Location": f"{base}/queue/item/{number}/"})
                return
            if path == f"/queue/item/{number}/api/json":
                polls = self.server.polls[number] = self.server.polls.get(number, 0) + 1
                if polls == 1:
                    self.reply(200, {"id": number, "why": "Waiting for next available executor"})
                else:
                    self.reply(200, {"id": number, "executable": {"number": 40 + number}})
                return
            if path == f"/job/{job}/{40 + number}/api/json":
                self.reply(
                    200,
                    {
                        "number": 40 + number,
                        "building": False,
                        "result": outcome,
                        "duration": 1234,
                        "url": f"{base}/job/{job}/{40 + number}/",
                    },
                )
                return
        self.reply(404, "Not Found")


class PeerServer(ThreadingHTTPServer):
    requests: list[dict[str, Any]]
    polls: dict[int, int]


@pytest.fixture(scope="module")
def peer() -> Iterator[PeerServer]:
    server = PeerServer(("127.0.0.1", 0), Handler)
    server.requests, server.polls = [], {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    extra = "[http_runner]\nallowed_networks = 127.0.0.0/8\n"
    with running_engine(tmp_path_factory.mktemp("pack-http"), extra_conf=extra) as running:
        yield running


@pytest.fixture(scope="module")
def st2(engine: RunningEngine, tmp_path_factory: pytest.TempPathFactory) -> St2:
    return logged_in(engine, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def api(engine: RunningEngine, st2: St2) -> Iterator[httpx.Client]:
    with engine_api(engine, st2) as client:
        yield client


@pytest.fixture(scope="module")
def configured(api: httpx.Client, peer: PeerServer) -> str:
    """Pack configs pointing the slack and jenkins packs at the local server."""
    base = f"http://127.0.0.1:{peer.server_port}"
    for pack, values in (
        (
            "slack",
            {
                "webhook_url": f"{base}/services/T000/B000/good",
                "bot_token": BOT_TOKEN,
                "api_url": f"{base}/api/",
                "channel": "#ops",
            },
        ),
        ("jenkins", {"url": f"{base}/jenkins/", "username": "ci-bot", "api_token": JENKINS_TOKEN}),
    ):
        stored = api.put(f"/configs/{pack}", json=values)
        assert stored.status_code == 200, stored.text
    return base


def succeeded(st2: St2, ref: str, *parameters: str) -> Any:
    return actions.succeeded(st2, ref, *parameters, secrets=SECRETS)


def failed(st2: St2, ref: str, *parameters: str) -> dict[str, Any]:
    return actions.failed(st2, ref, *parameters, secrets=SECRETS)


# --- http ----------------------------------------------------------------------------------


def test_http_request_methods_headers_and_basic_auth(st2: St2, peer: PeerServer) -> None:
    url = f"http://127.0.0.1:{peer.server_port}/echo/items"
    result = succeeded(
        st2,
        "http.request",
        f"url={url}",
        "method=PUT",
        "body=plain text",
        'headers={"X-Trace": "abc"}',
        'params={"page": "2"}',
        "username=ops",
        f"password={PASSWORD}",
    )
    assert result["status_code"] == 200 and result["parsed"] is True
    echoed = result["body"]
    assert (echoed["method"], echoed["path"], echoed["query"]) == (
        "PUT",
        "/echo/items",
        {"page": "2"},
    )
    assert echoed["body"] == "plain text"
    assert echoed["headers"]["x-trace"] == "abc"
    expected = base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
    assert peer.requests[-1]["headers"]["authorization"] == f"Basic {expected}"
    got = succeeded(st2, "http.get", f"url={url}", f"auth=Authorization=Bearer {BEARER}")
    assert got["body"]["method"] == "GET"
    assert peer.requests[-1]["headers"]["authorization"] == f"Bearer {BEARER}"


def test_http_json_request_and_error_status(st2: St2, peer: PeerServer) -> None:
    url = f"http://127.0.0.1:{peer.server_port}/echo/alerts"
    result = succeeded(
        st2, "http.json_request", f"url={url}", 'body={"alert": "disk", "severity": 2}'
    )
    echoed = result["body"]
    assert echoed["method"] == "POST"
    assert json.loads(echoed["body"]) == {"alert": "disk", "severity": 2}
    assert echoed["headers"]["content-type"] == "application/json"
    refused = failed(st2, "http.request", f"url={url}?status=503")
    assert refused["status_code"] == 503
    closed = failed(st2, "http.get", "url=http://127.0.0.1:1/")
    assert "ConnectError" in closed["error"]


def test_http_loopback_is_denied_without_allowed_networks(peer: PeerServer) -> None:
    """The same action with the engine's default network policy (no allowed_networks)."""
    metadata = yaml.safe_load((BUNDLED_PACKS_DIR / "http" / "actions" / "get.yaml").read_text())
    request = RunnerRequest(
        execution_id=new_id(),
        action_ref="http.get",
        pack="http",
        runner_type=metadata["runner_type"],
        entry_point="",
        entry_point_path=None,
        pack_path=BUNDLED_PACKS_DIR / "http",
        action_parameters={"url": f"http://127.0.0.1:{peer.server_port}/echo", "method": "GET"},
        parameter_schema=metadata["parameters"],
        timeout=30,
    )
    before = len(peer.requests)
    runner = runner_class("http-request")(request, lambda _kind, _data: None)
    runner.pre_run()
    outcome = runner.run()
    assert outcome.status is ExecutionStatus.FAILED
    assert "loopback" in outcome.result["error"]
    assert len(peer.requests) == before, "nothing was sent"


# --- slack ---------------------------------------------------------------------------------


def test_slack_webhook(st2: St2, peer: PeerServer, configured: str) -> None:
    posted = succeeded(st2, "slack.post_message", "message=Disk full on web-1", "channel=#ops")
    assert posted["result"] == {"ok": True, "channel": "#ops", "response": "ok"}
    assert json.loads(peer.requests[-1]["body"]) == {
        "text": "Disk full on web-1",
        "channel": "#ops",
    }
    gone = failed(
        st2,
        "slack.post_message",
        "message=hi",
        f"webhook_url={configured}/services/T000/B000/revoked",
    )
    assert "Slack refused the message: HTTP 404 no_service" in gone["stderr"]
    empty = failed(st2, "slack.post_message", "message=")
    assert "HTTP 400 invalid_payload" in empty["stderr"]


def test_slack_chat_post_message(st2: St2, peer: PeerServer) -> None:
    posted = succeeded(st2, "slack.chat_post_message", "text=Restarted nginx")
    assert posted["result"] == {"ok": True, "channel": "C024BE91L", "ts": "1700000000.000100"}
    sent = peer.requests[-1]
    assert sent["headers"]["authorization"] == f"Bearer {BOT_TOKEN}"
    assert json.loads(sent["body"]) == {"channel": "#ops", "text": "Restarted nginx"}
    missing = failed(st2, "slack.chat_post_message", "text=hi", "channel=#nowhere")
    assert "Slack refused the message: channel_not_found" in missing["stderr"]
    bad_token = failed(st2, "slack.chat_post_message", "text=hi", "token=xoxb-wrong")
    assert "Slack refused the message: invalid_auth" in bad_token["stderr"]


# --- jenkins -------------------------------------------------------------------------------


def test_jenkins_trigger_with_parameters_and_read_status(
    st2: St2, peer: PeerServer, configured: str
) -> None:
    queued = succeeded(st2, "jenkins.build_job", "job=deploy", 'parameters={"ENV": "prod"}')
    assert queued["result"] == {
        "job": "deploy",
        "queue_url": f"{configured}/jenkins/queue/item/1/",
        "queue_id": 1,
    }
    trigger = peer.requests[-1]
    assert trigger["path"] == "/jenkins/job/deploy/buildWithParameters"
    assert trigger["headers"]["jenkins-crumb"] == CRUMB
    assert urllib.parse.parse_qs(trigger["body"]) == {"ENV": ["prod"]}

    waiting = succeeded(st2, "jenkins.build_status", "job=deploy", "queue_id=1")["result"]
    assert (waiting["state"], waiting["why"]) == ("queued", "Waiting for next available executor")
    done = succeeded(st2, "jenkins.build_status", "job=deploy", "queue_id=1")["result"]
    assert (done["state"], done["build_number"], done["result"]) == ("finished", 41, "SUCCESS")
    by_number = succeeded(st2, "jenkins.build_status", "job=deploy", "build_number=41")
    assert by_number["result"]["result"] == "SUCCESS"


def test_jenkins_wait_fails_on_a_failed_build_and_errors_are_clear(
    st2: St2, peer: PeerServer, configured: str
) -> None:
    waited = failed(st2, "jenkins.build_job", "job=folder/flaky", "wait=true", "poll_interval=0.2")
    assert waited["result"]["result"] == "FAILURE" and waited["result"]["build_number"] == 42
    assert waited["result"]["error"] == "Build of folder/flaky ended FAILURE."
    assert peer.requests[-4]["path"] == "/jenkins/job/folder/job/flaky/build"
    unknown = failed(st2, "jenkins.build_job", "job=nosuchjob")
    assert "Jenkins has nothing at" in unknown["stderr"]
    assert "nosuchjob/build (HTTP 404)" in unknown["stderr"]


def test_no_secret_reached_the_engine_logs(engine: RunningEngine, peer: PeerServer) -> None:
    """Runs last: the secrets the tests above sent are in no service's log."""
    assert any(r["headers"].get("authorization") for r in peer.requests), "secrets were sent"
    for service in engine.processes:
        log = engine.log(service)
        for secret in SECRETS:
            assert secret not in log, f"{secret} is in the {service} log"
