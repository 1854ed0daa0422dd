"""The engine client follows a replaced key file; the key file is written atomically; status
lines and reload logs never show secrets."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import httpx
import pytest

from poundcake.config import Settings
from poundcake.ops.key_rotation import write_key_file
from poundcake.ops.reload import reload_engine_key
from poundcake.probes.queues import broker_location
from poundcake.remediation.engine_api import EngineClient, request_key_reload


class KeyedEngine:
    """An engine that accepts only the keys in ``valid`` and remembers what it was sent."""

    def __init__(self, *valid: str) -> None:
        self.valid = set(valid)
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("St2-Api-Key", "")
        self.seen.append(key)
        if key not in self.valid:
            return httpx.Response(401, json={"faultstring": "Unauthorized"})
        return httpx.Response(200, json={"id": "x", "status": "succeeded"})


def client(path: Path, engine: KeyedEngine) -> EngineClient:
    return EngineClient(
        "http://engine.test/v1", api_key_file=path, transport=httpx.MockTransport(engine)
    )


def test_a_replaced_key_file_is_used_from_the_next_request(tmp_path: Path) -> None:
    path = tmp_path / "key"
    write_key_file(path, "old-key-1111")
    engine = KeyedEngine("old-key-1111", "new-key-2222")
    engine_client = client(path, engine)
    engine_client.get_execution("x")
    write_key_file(path, "new-key-2222")
    engine_client.get_execution("x")
    assert engine.seen == ["old-key-1111", "new-key-2222"]


def test_a_request_refused_with_the_old_key_is_repeated_with_the_file_read_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "key"
    write_key_file(path, "old-key-1111")
    engine = KeyedEngine("old-key-1111")
    engine_client = client(path, engine)
    engine_client.get_execution("x")
    path_stat = path.stat()
    # The old key is deleted, and the file rewritten in place with the same size and times.
    engine.valid = {"new-key-2222"}
    path.write_text("new-key-2222\n")
    os.utime(path, ns=(path_stat.st_atime_ns, path_stat.st_mtime_ns))
    assert engine_client.get_execution("x")["status"] == "succeeded"
    assert engine.seen == ["old-key-1111", "old-key-1111", "new-key-2222"]


def test_a_reload_request_makes_clients_read_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "key"
    write_key_file(path, "old-key-1111")
    engine = KeyedEngine("old-key-1111", "new-key-2222")
    engine_client = client(path, engine)
    engine_client.get_execution("x")
    path_stat = path.stat()
    path.write_text("new-key-2222\n")
    os.utime(path, ns=(path_stat.st_atime_ns, path_stat.st_mtime_ns))
    engine_client.get_execution("x")
    request_key_reload()
    engine_client.get_execution("x")
    assert engine.seen == ["old-key-1111", "old-key-1111", "new-key-2222"]


def test_the_key_file_is_replaced_atomically_and_private(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "st2-api-key"
    write_key_file(path, "first")
    inode = path.stat().st_ino
    write_key_file(path, "second")
    assert path.read_text() == "second\n"
    assert path.stat().st_ino != inode
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["st2-api-key"]


def test_broker_locations_hide_passwords() -> None:
    assert broker_location("amqp://guest:s3cret@rabbit:5672/v") == "amqp://guest:**@rabbit:5672/v"
    assert broker_location("redis://:s3cret@redis:6379/0") == "redis://:**@redis:6379/0"
    assert broker_location("redis://redis:6379/0") == "redis://redis:6379/0"


def test_a_reload_logs_the_file_never_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "key"
    write_key_file(path, "secret-key-9999")
    settings = Settings(_env_file=None, ST2_API_KEY_FILE=str(path))  # type: ignore[call-arg]
    with caplog.at_level(logging.INFO, logger="poundcake.ops.reload"):
        reload_engine_key("poundcake-api", settings)
    assert f"poundcake-api: reloaded; the engine API key is read again from {path}" in caplog.text
    assert "secret-key-9999" not in caplog.text

    from_env = Settings(_env_file=None, ST2_API_KEY="env-key-8888")  # type: ignore[call-arg]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="poundcake.ops.reload"):
        reload_engine_key("poundcake-worker", from_env)
    assert "ST2_API_KEY is set and is read only at start" in caplog.text
    assert "env-key-8888" not in caplog.text
