"""The engine client against a local transport: requests, the API key, typed errors."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from poundcake.config import Settings
from poundcake.remediation.engine_api import (
    API_KEY_HEADER,
    TRIGGER_INSTANCE_HEADER,
    EngineClient,
    EngineError,
    EngineNotFoundError,
    EngineUnavailableError,
)

KEY = "k" * 64
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **options: Any) -> EngineClient:
    options.setdefault("api_key", SecretStr(KEY))
    return EngineClient("http://engine.test/v1", transport=httpx.MockTransport(handler), **options)


def test_dispatch_posts_the_generic_webhook_with_the_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            202, json=json.loads(request.content), headers={TRIGGER_INSTANCE_HEADER: "a1, b2"}
        )

    ids = client(handler).dispatch_alert({"alert_id": "x", "__context": {"dispatch_key": "k1"}})
    assert ids == ["a1", "b2"]
    [request] = seen
    assert (request.method, request.url.path) == ("POST", "/v1/webhooks/st2")
    assert request.headers[API_KEY_HEADER] == KEY
    assert json.loads(request.content) == {
        "trigger": "poundcake.alert",
        "payload": {"alert_id": "x", "__context": {"dispatch_key": "k1"}},
    }


def test_dispatch_without_the_header_looks_the_instance_up() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json={})
        assert request.url.params["trigger"] == "poundcake.alert"
        return httpx.Response(
            200,
            json=[
                {"id": "other", "payload": {"__context": {"dispatch_key": "nope"}}},
                {"id": "mine", "payload": {"__context": {"dispatch_key": "k1"}}},
            ],
        )

    assert client(handler).dispatch_alert({"__context": {"dispatch_key": "k1"}}) == ["mine"]


def test_find_dispatched_reads_every_page_after_since() -> None:
    offsets: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        offsets.append(params["offset"])
        assert params["timestamp_gt"] == "2026-01-02T03:04:05.000000Z"
        page = int(params["offset"]) // 100
        count = 100 if page < 2 else 7
        items = [
            {"id": f"{page}-{n}", "payload": {"__context": {"dispatch_key": f"k{page}-{n}"}}}
            for n in range(count)
        ]
        return httpx.Response(200, json=items)

    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert client(handler).find_dispatched("k2-3", since) == ["2-3"]
    assert offsets == ["0", "100", "200"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, EngineUnavailableError),
        (503, EngineUnavailableError),
        (401, EngineUnavailableError),
        (429, EngineUnavailableError),
        (404, EngineNotFoundError),
        (400, EngineError),
    ],
)
def test_errors_are_typed(status: int, error: type[EngineError]) -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"faultstring": "nope"})

    with pytest.raises(error) as raised:
        client(handler).get_execution("e1")
    assert type(raised.value) is error
    assert (raised.value.status_code, raised.value.faultstring) == (status, "nope")
    assert "GET /executions/e1" in str(raised.value)


def test_an_unreachable_engine_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(EngineUnavailableError, match="cannot reach the engine"):
        client(handler).get_trigger_instance("t1")


def test_the_key_comes_from_its_file_and_is_read_again_on_401(tmp_path: Path) -> None:
    key_file = tmp_path / "st2-api-key"
    key_file.write_text("old-key\n")
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get(API_KEY_HEADER))
        if request.headers.get(API_KEY_HEADER) != "new-key":
            return httpx.Response(401, json={"faultstring": "Unauthorized"})
        return httpx.Response(200, json={"id": "t1", "status": "processed"})

    engine = client(handler, api_key=None, api_key_file=key_file)
    with pytest.raises(EngineUnavailableError):
        engine.get_trigger_instance("t1")
    written = key_file.stat().st_mtime_ns
    key_file.write_text("new-key\n")
    # File times are coarse (a clock tick): make the rewrite visible as a later modification.
    os.utime(key_file, ns=(written + 10**9, written + 10**9))
    assert engine.get_trigger_instance("t1")["status"] == "processed"
    # The 401 read the file again (still the old key); the rewritten file is read before use.
    assert seen == ["old-key", "old-key", "new-key"]


def test_without_a_key_the_error_says_what_to_set(tmp_path: Path) -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"faultstring": "One of Token or API key required."})

    engine = client(handler, api_key=None, api_key_file=tmp_path / "missing")
    with pytest.raises(EngineUnavailableError, match="set ST2_API_KEY or ST2_API_KEY_FILE"):
        engine.rule_enforcements("t1")


def test_from_settings_uses_the_embedded_key_file(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "st2-api-key").write_text("file-key")
    settings = Settings(_env_file=None, POUNDCAKE_DATA_DIR=str(tmp_path))  # type: ignore[call-arg]
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get(API_KEY_HEADER))
        return httpx.Response(200, json=[])

    engine = EngineClient.from_settings(settings, transport=httpx.MockTransport(handler))
    assert engine.children("w1") == []
    assert seen == ["file-key"]


def test_children_and_enforcements_queries() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if request.url.path == "/v1/executions":
            assert params["parent"] == "w1"
            return httpx.Response(
                200,
                json=[
                    {"id": "c2", "start_timestamp": "2026-01-01T00:00:02.000000Z"},
                    {"id": "c1", "start_timestamp": "2026-01-01T00:00:01.000000Z"},
                ],
            )
        assert request.url.path == "/v1/ruleenforcements"
        assert params["trigger_instance"] == "t1"
        return httpx.Response(
            200,
            json=[
                {"id": "e2", "enforced_at": "2026-01-01T00:00:02.000000Z"},
                {"id": "e1", "enforced_at": "2026-01-01T00:00:01.000000Z"},
            ],
        )

    engine = client(handler)
    assert [child["id"] for child in engine.children("w1")] == ["c1", "c2"]
    assert [item["id"] for item in engine.rule_enforcements("t1")] == ["e1", "e2"]


def test_cancel_and_the_key_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("DELETE", "/v1/executions/w1")
        return httpx.Response(200, json={"id": "w1", "status": "canceling"})

    with caplog.at_level(logging.DEBUG):
        assert client(handler).cancel_execution("w1")["status"] == "canceling"
    assert KEY not in caplog.text


def test_actions_and_runner_types_are_read_from_their_lists() -> None:
    seen: list[tuple[str, dict[str, str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, dict(request.url.params)))
        if request.url.params.get("name") == "missing":
            return httpx.Response(200, json=[])
        return httpx.Response(200, json=[{"ref": "core.noop", "name": "noop"}])

    engine_api = client(handler)
    assert engine_api.get_action("core.noop") == {"ref": "core.noop", "name": "noop"}
    assert engine_api.get_action("core.missing") is None
    assert engine_api.get_action("no-dot") is None
    assert engine_api.get_runner_type("noop") == {"ref": "core.noop", "name": "noop"}
    assert seen == [
        ("/v1/actions", {"pack": "core", "name": "noop", "limit": "1"}),
        ("/v1/actions", {"pack": "core", "name": "missing", "limit": "1"}),
        ("/v1/runnertypes", {"name": "noop"}),
    ]


def test_pending_inquiries_are_read_page_by_page_never_with_limit_minus_one() -> None:
    offsets: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["limit"] == "100"
        offset = int(request.url.params["offset"])
        offsets.append(str(offset))
        count = 100 if offset == 0 else 3
        return httpx.Response(200, json=[{"id": f"i{offset + n}"} for n in range(count)])

    assert client(handler).pending_inquiries() == {f"i{n}" for n in range(103)}
    assert offsets == ["0", "100"]
