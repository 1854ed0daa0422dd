"""poundcake-api's intake served for a test: a real uvicorn in a thread on a MariaDB scratch
database (:func:`running_intake`), its webhook tokens, and Alertmanager payloads to send it.
Shared by the intake, CAB, status and health tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import DatabaseTarget, PoundCakeConfig, Settings, load_st2_config
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.migrate import setup_engine_schema, setup_poundcake_schema
from poundcake.db.session import make_session_factory
from poundcake.remediation.api.app import create_app

TOKEN = "intake-test-token-6f1d2c"
OTHER_TOKEN = "second-token-a8e3"
WRONG_TOKEN = "wrong-token-zq93kx"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Intake:
    """A running poundcake-api with its database and what it queued."""

    url: str
    app: FastAPI
    sessions: sessionmaker[Session]
    engine: sa.Engine
    enqueued: list[list[int]] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def post(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        with self.client() as client:
            return client.post("/api/v1/webhook", json=body, headers=headers or AUTH)

    def flush_records(self) -> None:
        assert self.app.state.poundcake.recorder.flush()

    def queued(self) -> list[list[int]]:
        """The delivery ids handed to the task queue, once the hand-off thread caught up."""
        assert self.app.state.poundcake.handoff.flush()
        return self.enqueued

    def rows(self, table: str, order: str = "id") -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            result = connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}"))
            return [dict(row._mapping) for row in result]


def settings_for(tmp_path: Path, **values: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        POUNDCAKE_DATA_DIR=str(tmp_path / "data"),
        POUNDCAKE_WEBHOOK_TOKENS=f"{TOKEN}, {OTHER_TOKEN}",
        **values,
    )


def mariadb_config(tmp_path: Path, database: str, **values: Any) -> PoundCakeConfig:
    conf = tmp_path / "st2.conf"
    conf.write_text(
        f"[database]\nbackend = mysql\nhost = 127.0.0.1\nusername = root\ndb_name = {database}\n"
    )
    st2 = load_st2_config(conf)
    setup_engine_schema(st2)
    config = PoundCakeConfig(
        settings=settings_for(tmp_path, **values),
        database=DatabaseTarget(url=st2.database.url, setting="test"),
        engine_database=st2.database,
    )
    setup_poundcake_schema(config)
    return config


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` on a real uvicorn in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextmanager
def running_intake(config: PoundCakeConfig, engine: sa.Engine | None = None) -> Iterator[Intake]:
    engine = engine or make_poundcake_engine(config)
    sessions = make_session_factory(engine)
    enqueued: list[list[int]] = []
    app = create_app(config, sessions=sessions, enqueue=lambda ids: enqueued.append(list(ids)))
    try:
        with serve(app) as url:
            yield Intake(url, app, sessions, engine, enqueued)
    finally:
        engine.dispose()


def am_alert(
    name: str = "DiskFull",
    instance: str = "web-01",
    status: str = "firing",
    starts: str = "2026-05-01T10:00:00.123456789Z",
    ends: str = "0001-01-01T00:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    labels = {"alertname": name, "instance": instance, "severity": "critical"}
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{name} on {instance}"},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"{abs(hash((name, instance))):016x}"[:16],
        **extra,
    }


def notification(*alerts: dict[str, Any], status: str = "firing", **extra: Any) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "poundcake",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
        **extra,
    }
