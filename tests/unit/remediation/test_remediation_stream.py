"""Reading the engine's event stream: server-sent events and which alert an execution serves."""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from poundcake.config import Settings
from poundcake.remediation.engine_stream import server_sent_events
from poundcake.remediation.tracking import stream
from poundcake.remediation.tracking.stream import alert_of


def test_server_sent_events_are_split_into_event_and_data() -> None:
    lines = [
        "event: st2.execution__update",
        'data: {"id": "1",',
        'data:  "context": {}}',
        "",
        ": a heartbeat comment",
        "",
        "event: st2.execution__update",
        'data: {"id": "2"}',
    ]
    assert list(server_sent_events(iter(lines))) == [
        ("st2.execution__update", '{"id": "1",\n"context": {}}'),
        ("st2.execution__update", '{"id": "2"}'),
    ]


def test_the_alert_of_a_finished_execution_comes_from_its_context() -> None:
    done = {"status": "succeeded"}
    assert alert_of({**done, "context": {"alert_id": "a" * 24}}) == "a" * 24
    assert alert_of({**done, "context": {"parent": {"alert_id": "b" * 24}}}) == "b" * 24
    assert alert_of({"status": "canceled", "context": {"alert_id": "c" * 24}}) == "c" * 24
    assert alert_of({"status": "running", "context": {"alert_id": "a" * 24}}) is None
    assert alert_of({**done, "context": {"user": "stanley"}}) is None
    assert alert_of({**done, "context": "not a mapping"}) is None
    assert alert_of(["not", "a", "document"]) is None


class RefusingStream(BaseHTTPRequestHandler):
    """st2stream with RBAC on, to a caller who is not an administrator."""

    requests = 0

    def do_GET(self) -> None:
        type(self).requests += 1
        body = b'{"faultstring": "The stream is for administrators while RBAC is on"}'
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_a_stream_refused_by_rbac_is_said_once_and_polling_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingStream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/stream"
    settings = Settings(_env_file=None, ST2_STREAM_URL=url, ST2_API_KEY="k")  # type: ignore[call-arg]
    monkeypatch.setattr(stream, "REFUSED_RETRY_SECONDS", 0.05)
    stop = threading.Event()
    follower = threading.Thread(target=stream.watch_executions, args=(settings, print, stop))
    caplog.set_level(logging.DEBUG, logger=stream.__name__)
    try:
        follower.start()
        deadline = time.monotonic() + 10
        while RefusingStream.requests < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        follower.join(timeout=5)
        server.shutdown()
    assert RefusingStream.requests >= 4
    said = [r for r in caplog.records if r.getMessage() == stream.REFUSED_MESSAGE % url]
    assert [r.levelno for r in said if r.levelno >= logging.INFO] == [logging.WARNING]
    assert not [r for r in caplog.records if "unavailable" in r.getMessage()]
