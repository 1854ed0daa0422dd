"""Real local peers for the security tests: an engine on its own database, an HTTP server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from poundcake.db.session import unit_of_work
from poundcake.engine.packs.locations import content_locations
from poundcake.engine.packs.registration import register_packs
from tests.integration.support.engine_stack import EngineStack, engine_stack
from tests.integration.support.mariadb import create_fixture_database, drop_fixture_database


@contextmanager
def running_engine(
    directory: Path, packs_dir: Path | None = None, packs: tuple[str, ...] = ("core",)
) -> Iterator[EngineStack]:
    """An engine on a database of its own with ``packs`` registered, scheduler and runner up."""
    directory.mkdir(parents=True, exist_ok=True)
    database = f"pctest_sec_{uuid.uuid4().hex[:10]}"
    create_fixture_database(database)
    extra = f"\n[system]\ndata_dir = {directory / 'data'}\n"
    if packs_dir is not None:
        extra += f"\n[content]\npacks_base_paths = {packs_dir}\n"
    try:
        with engine_stack(directory, database, extra) as stack:
            with unit_of_work(stack.runtime.sessions) as session:
                register_packs(
                    session=session,
                    locations=content_locations(stack.config),
                    packs=list(packs),
                    types=None,
                    system_user="stanley",
                )
            stack.start_scheduler()
            stack.start_runner(concurrency=4)
            yield stack
    finally:
        drop_fixture_database(database)


@dataclass(frozen=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpPeer:
    """A plain HTTP server on 127.0.0.1: ``/redirect?to=URL`` answers 302, anything else 200."""

    port: int = 0
    received: list[Received] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def _handler(peer: HttpPeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            target = urlsplit(self.path)
            headers = {name.lower(): value for name, value in self.headers.items()}
            peer.received.append(Received(self.command, target.path, headers, body))
            if target.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", parse_qs(target.query)["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def __getattr__(self, name: str) -> Any:
            # http.server calls do_<METHOD>; every method gets the same handling.
            if name.startswith("do_"):
                return self.handle_any
            raise AttributeError(name)

    return Handler


@contextmanager
def http_peer() -> Iterator[HttpPeer]:
    """Serve an :class:`HttpPeer` on a free port of 127.0.0.1."""
    peer = HttpPeer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(peer))
    peer.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
