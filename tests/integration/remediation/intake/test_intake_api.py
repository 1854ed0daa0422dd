"""poundcake-api's Alertmanager intake on a real uvicorn and a real MariaDB scratch database."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from poundcake.config import DatabaseTarget, PoundCakeConfig, Settings, load_st2_config
from poundcake.db.engine import make_engine, make_poundcake_engine
from poundcake.db.migrate import setup_engine_schema, setup_poundcake_schema
from poundcake.db.multirow import ROWS_PER_STATEMENT
from poundcake.db.session import make_session_factory
from poundcake.exceptions import ConfigurationError
from poundcake.remediation.alerts.ids import alert_id
from poundcake.remediation.api.app import create_app
from poundcake.remediation.api.auth import (
    TokenChecker,
    bearer_token,
    ensure_webhook_token,
    generated_token_path,
    webhook_tokens,
)
from poundcake.remediation.intake.payload import parse_timestamp
from tests.integration.support.intake import (
    AUTH,
    OTHER_TOKEN,
    TOKEN,
    WRONG_TOKEN,
    Intake,
    am_alert,
    mariadb_config,
    notification,
    running_intake,
    serve,
    settings_for,
)


@pytest.fixture
def config(tmp_path: Path, scratch_database: str) -> PoundCakeConfig:
    return mariadb_config(tmp_path, scratch_database)


@pytest.fixture
def intake(config: PoundCakeConfig) -> Iterator[Intake]:
    with running_intake(config) as running:
        yield running


def episode_id(raw: dict[str, Any]) -> str:
    starts = parse_timestamp(raw["startsAt"])
    assert starts is not None
    return alert_id(raw["fingerprint"], starts)


# --- accepting -----------------------------------------------------------------------------


def test_a_notification_is_committed_then_answered_202_and_queued(intake: Intake) -> None:
    first, second = am_alert(instance="web-01"), am_alert(instance="web-02")
    body = notification(
        first, {"labels": {"alertname": "Broken"}}, second, notification_reason="new alerts added"
    )

    response = intake.post(body)

    assert response.status_code == 202
    document = response.json()
    request_id = response.headers["x-request-id"]
    assert document == {
        "request_id": request_id,
        "status": "accepted",
        "accepted": 2,
        "deliveries": 2,
        "rejected": [{"index": 1, "error": "startsAt is missing"}],
        "truncated_alerts": 0,
    }
    alerts = intake.rows("poundcake_alerts")
    assert {row["id"] for row in alerts} == {episode_id(first), episode_id(second)}
    for row in alerts:
        assert row["status"] == "firing"
        assert row["state"] == "received"
        assert row["alert_name"] == "DiskFull"
        assert row["severity"] == "critical"
        assert row["request_id"] == row["last_request_id"] == request_id
        assert json.loads(row["request_ids"]) == [request_id]
        assert row["delivery_count"] == 1
        assert row["ends_at"] is None
        assert row["resolved_at"] is None
        assert str(row["starts_at"]) == "2026-05-01 10:00:00.123456"
    deliveries = intake.rows("poundcake_alert_deliveries")
    assert len(deliveries) == 2
    for row in deliveries:
        assert row["request_id"] == request_id
        assert row["status"] == "firing"
        assert row["notification_reason"] == "new alerts added"
        assert row["receiver"] == "poundcake"
        assert row["group_key"] == '{}:{alertname="DiskFull"}'
        assert row["processed_at"] is None
        assert row["attempts"] == 0
    assert intake.queued() == [sorted(row["id"] for row in deliveries)]
    (call,) = intake.rows("poundcake_api_calls")
    assert call["request_id"] == request_id
    assert call["method"] == "POST"
    assert call["path"] == "/api/v1/webhook"
    assert call["status_code"] == 202
    assert call["duration_ms"] > 0
    assert call["client_ip"] == "127.0.0.1"
    assert call["user_agent"].startswith("python-httpx/")
    assert call["body_size"] == len(response.request.content)
    assert call["error"] == "1 alert(s) rejected: alert 1: startsAt is missing"


def test_the_short_path_and_the_second_token_work_too(intake: Intake) -> None:
    with intake.client() as client:
        response = client.post(
            "/webhook",
            json=notification(am_alert()),
            headers={"authorization": f"bearer {OTHER_TOKEN}"},
        )

    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert len(intake.rows("poundcake_alerts")) == 1


def test_replays_from_two_senders_are_deliveries_of_one_episode(intake: Intake) -> None:
    body = notification(am_alert())
    start = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def sender() -> None:
        with intake.client() as client:
            start.wait()
            for _ in range(3):
                answers.append(client.post("/api/v1/webhook", json=body, headers=AUTH))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [answer.status_code for answer in answers] == [202] * 6
    (episode,) = intake.rows("poundcake_alerts")
    assert episode["delivery_count"] == 6
    request_ids = {answer.headers["x-request-id"] for answer in answers}
    assert set(json.loads(episode["request_ids"])) == request_ids
    assert episode["request_id"] in request_ids
    deliveries = intake.rows("poundcake_alert_deliveries")
    assert len(deliveries) == 6
    assert {row["alert_id"] for row in deliveries} == {episode["id"]}
    assert sorted(i for ids in intake.queued() for i in ids) == [row["id"] for row in deliveries]
    assert len(intake.rows("poundcake_api_calls")) == 6


AWKWARD = (
    "it's 100% \\full\\ on \"/var\"; %s %(name)s %% \u00e9\u4e2d\U0001f525 \x00\t\n ' OR '1'='1"
)


def test_values_are_stored_exactly_as_sent_in_a_notification_of_many_statements(
    intake: Intake,
) -> None:
    """Labels, annotations, receiver and group key with quotes, backslashes, percent signs,
    placeholders, NUL and 4-byte UTF-8 come back byte for byte, over more alerts than one
    statement carries (the intake renders its multi-row statements itself on MariaDB)."""
    alerts = [
        dict(
            am_alert(instance=f"web-{n:04d}"),
            labels={"alertname": f"{AWKWARD}{n}", "instance": f"web-{n:04d}", "weird": AWKWARD},
            annotations={"summary": AWKWARD, AWKWARD: "key too"},
            generatorURL=None if n % 2 else f"http://prometheus/{AWKWARD}",
        )
        for n in range(ROWS_PER_STATEMENT + 7)
    ]
    body = notification(*alerts, receiver=f"team {AWKWARD}", groupKey=AWKWARD)

    response = intake.post(body)

    assert response.status_code == 202, response.text
    assert response.json()["deliveries"] == len(alerts)
    request_id = response.headers["x-request-id"]
    rows = {row["id"]: row for row in intake.rows("poundcake_alerts")}
    assert len(rows) == len(alerts)
    for n, alert in enumerate(alerts):
        row = rows[episode_id(alert)]
        assert json.loads(row["labels"]) == alert["labels"]
        assert json.loads(row["annotations"]) == alert["annotations"]
        assert row["alert_name"] == f"{AWKWARD}{n}"
        assert row["generator_url"] == alert["generatorURL"]
        assert row["severity"] is None
        assert row["request_id"] == row["last_request_id"] == request_id
        assert json.loads(row["request_ids"]) == [request_id]
        assert (row["state"], row["delivery_count"], row["abandoned_retries"]) == ("received", 1, 0)
    deliveries = intake.rows("poundcake_alert_deliveries")
    assert sorted(row["alert_id"] for row in deliveries) == sorted(rows)
    assert {(row["receiver"], row["group_key"]) for row in deliveries} == {
        (f"team {AWKWARD}", AWKWARD)
    }
    assert sorted(i for ids in intake.queued() for i in ids) == [row["id"] for row in deliveries]


def test_a_resolved_alert_in_a_firing_group_closes_its_episode_for_good(intake: Intake) -> None:
    still_firing = am_alert(instance="web-01")
    firing_then = am_alert(instance="web-02")
    resolved = dict(firing_then, status="resolved", endsAt="2026-05-01T11:00:00.5Z")

    assert intake.post(notification(still_firing, firing_then)).status_code == 202
    assert intake.post(notification(still_firing, resolved)).status_code == 202
    # Alertmanager (an HA peer, a retry) may still send the older firing state afterwards.
    late = intake.post(notification(firing_then))

    assert late.status_code == 202
    rows = {row["id"]: row for row in intake.rows("poundcake_alerts")}
    open_row, closed_row = rows[episode_id(still_firing)], rows[episode_id(firing_then)]
    assert open_row["status"] == "firing"
    assert open_row["ends_at"] is None
    assert open_row["delivery_count"] == 2
    assert closed_row["status"] == "resolved"
    assert str(closed_row["ends_at"]) == "2026-05-01 11:00:00.500000"
    assert closed_row["resolved_at"] is not None
    assert closed_row["delivery_count"] == 3
    statuses = [
        row["status"]
        for row in intake.rows("poundcake_alert_deliveries")
        if row["alert_id"] == closed_row["id"]
    ]
    assert statuses == ["firing", "resolved", "firing"]


def test_request_ids_are_capped_at_fifty(intake: Intake) -> None:
    body = notification(am_alert())
    with intake.client() as client:
        ids = [
            client.post("/api/v1/webhook", json=body, headers=AUTH).headers["x-request-id"]
            for _ in range(53)
        ]

    (episode,) = intake.rows("poundcake_alerts")
    assert episode["delivery_count"] == 53
    assert json.loads(episode["request_ids"]) == ids[:50]
    assert episode["last_request_id"] == ids[-1]


def test_malformed_alerts_are_isolated(intake: Intake) -> None:
    good = am_alert(instance="ok")
    body = notification(
        am_alert(instance="bad-start", startsAt="2026-05-01T10:00:00"),
        good,
        am_alert(instance="bad-labels", labels={"alertname": 1}),
        am_alert(instance="bad-status", status="silenced"),
        "nonsense",
        {"labels": {"alertname": "NoFingerprint", "job": "x"}, "startsAt": "2026-05-01T10:00:00Z"},
    )

    response = intake.post(body)

    assert response.status_code == 202
    document = response.json()
    assert document["accepted"] == 2
    assert [item["index"] for item in document["rejected"]] == [0, 2, 3, 4]
    names = sorted(row["alert_name"] for row in intake.rows("poundcake_alerts"))
    assert names == ["DiskFull", "NoFingerprint"]


def test_only_malformed_alerts_still_records_the_call(intake: Intake) -> None:
    response = intake.post(notification({"labels": {}}))

    assert response.status_code == 202
    assert response.json()["accepted"] == 0
    assert intake.rows("poundcake_alerts") == []
    assert intake.queued() == []
    (call,) = intake.rows("poundcake_api_calls")
    assert call["status_code"] == 202


def test_truncated_alerts_are_reported(intake: Intake) -> None:
    response = intake.post(notification(am_alert(), truncatedAlerts=7))

    assert response.status_code == 202
    assert response.json()["truncated_alerts"] == 7


# --- authentication ------------------------------------------------------------------------


def all_stored_text(engine: sa.Engine) -> str:
    """Every value of every column of every table, as text."""
    with engine.connect() as connection:
        tables = sa.inspect(connection).get_table_names()
        return "\n".join(
            repr(tuple(row))
            for table in tables
            for row in connection.execute(sa.text(f"SELECT * FROM `{table}`"))
        )


def test_a_missing_or_wrong_token_is_401_recorded_without_the_token(
    intake: Intake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = notification(am_alert())
    with intake.client() as client:
        accepted = client.post("/api/v1/webhook", json=body, headers=AUTH)
        missing = client.post("/api/v1/webhook", json=body)
        wrong = client.post(
            f"/api/v1/webhook?token={WRONG_TOKEN}",
            json=body,
            headers={"Authorization": f"Bearer {WRONG_TOKEN}", "Cookie": f"s={WRONG_TOKEN}"},
        )
        basic = client.post("/webhook", json=body, auth=("user", WRONG_TOKEN))
    intake.flush_records()

    assert accepted.status_code == 202
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["request_id"] == response.headers["x-request-id"]
        assert "bearer token" in response.json()["error"]
    calls = {row["request_id"]: row for row in intake.rows("poundcake_api_calls")}
    for response in (missing, wrong, basic):
        call = calls[response.headers["x-request-id"]]
        assert call["status_code"] == 401
        assert call["error"] == response.json()["error"]
    assert calls[wrong.headers["x-request-id"]]["path"] == "/api/v1/webhook"
    assert len(intake.rows("poundcake_alert_deliveries")) == 1
    stored = all_stored_text(intake.engine)
    # The server's log records (the test's own HTTP client logs the URL it requested).
    server_records = [
        record for record in caplog.records if not record.name.startswith(("httpx", "httpcore"))
    ]
    logged = "\n".join(f"{record.getMessage()} {record.args}" for record in server_records)
    for secret in (TOKEN, OTHER_TOKEN, WRONG_TOKEN):
        assert secret not in stored
        assert secret not in logged


def test_webhook_tokens_from_settings_file_and_generated(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("# Alertmanager\nfrom-file-1\n\n  from-file-2  \n")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        POUNDCAKE_DATA_DIR=str(tmp_path / "data"),
        POUNDCAKE_WEBHOOK_TOKENS=" a-token ,,b-token",
        POUNDCAKE_WEBHOOK_TOKEN_FILE=str(token_file),
    )
    assert webhook_tokens(settings) == {"a-token", "b-token", "from-file-1", "from-file-2"}
    assert ensure_webhook_token(settings) == "a-token"
    assert not generated_token_path(settings).exists()

    bare = Settings(_env_file=None, POUNDCAKE_DATA_DIR=str(tmp_path / "data"))  # type: ignore[call-arg]
    generated = ensure_webhook_token(bare)
    path = generated_token_path(bare)
    assert path == tmp_path / "data" / "secrets" / "webhook-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(generated) >= 32
    assert ensure_webhook_token(bare) == generated
    assert webhook_tokens(bare) == {generated}
    assert [p.name for p in path.parent.iterdir()] == ["webhook-token"]

    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigurationError, match="POUNDCAKE_WEBHOOK_TOKEN_FILE"):
        webhook_tokens(Settings(_env_file=None, POUNDCAKE_WEBHOOK_TOKEN_FILE=str(empty)))  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="cannot read"):
        webhook_tokens(
            Settings(_env_file=None, POUNDCAKE_WEBHOOK_TOKEN_FILE=str(tmp_path / "absent"))  # type: ignore[call-arg]
        )


def test_bearer_header_parsing_and_checking() -> None:
    checker = TokenChecker(["t1", "t2"])

    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    assert bearer_token("Basic dXNlcjpwYXNz") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
    assert checker.problem("Bearer t1") is None
    assert checker.problem("BEARER t2") is None
    assert checker.problem("Bearer t3") == "the bearer token is not valid"
    assert checker.problem("Bearer t1x") == "the bearer token is not valid"
    assert checker.problem(None) is not None
    assert checker.problem("Bearer é") == "the bearer token is not valid"


# --- request ids ---------------------------------------------------------------------------


def test_a_well_formed_x_request_id_is_kept_and_others_replaced(
    intake: Intake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = notification(am_alert())
    chosen = "alertmanager-01:req.42_x"
    with intake.client() as client:
        kept = client.post("/api/v1/webhook", json=body, headers={**AUTH, "X-Request-ID": chosen})
        reused = client.post("/api/v1/webhook", json=body, headers={**AUTH, "X-Request-ID": chosen})
        short = client.post("/api/v1/webhook", json=body, headers={**AUTH, "X-Request-ID": "abc"})
        spaced = client.post(
            "/api/v1/webhook", json=body, headers={**AUTH, "X-Request-ID": "has spaces in it"}
        )
        long = client.post("/api/v1/webhook", json=body, headers={**AUTH, "X-Request-ID": "x" * 65})
        elsewhere = client.get("/api/v1/nothing-here", headers={"X-Request-ID": "get-request-01"})

    assert kept.status_code == 202
    assert kept.headers["x-request-id"] == kept.json()["request_id"] == chosen
    for response in (reused, short, spaced, long):
        assert response.status_code == 202
        assert response.headers["x-request-id"] == response.json()["request_id"]
        assert response.headers["x-request-id"] != chosen
        assert len(response.headers["x-request-id"]) == 32
    assert chosen in caplog.text
    assert elsewhere.status_code == 404
    assert elsewhere.headers["x-request-id"] == elsewhere.json()["request_id"] == "get-request-01"
    intake.flush_records()
    ids = [row["request_id"] for row in intake.rows("poundcake_api_calls")]
    assert chosen in ids
    assert reused.headers["x-request-id"] in ids
    assert "get-request-01" in ids
    (episode,) = intake.rows("poundcake_alerts")
    assert episode["request_id"] == chosen
    assert episode["delivery_count"] == 5

    with intake.client() as client:
        again = client.get("/api/v1/nothing-here", headers={"X-Request-ID": "get-request-01"})
    assert again.headers["x-request-id"] != "get-request-01"
    assert again.json()["request_id"] == again.headers["x-request-id"]


def test_other_requests_are_recorded_after_their_response(intake: Intake) -> None:
    with intake.client() as client:
        missing = client.get("/api/v1/unknown?api_key=hidden-value", headers={"User-Agent": "me"})
        health = client.get("/health")
    intake.flush_records()

    assert missing.status_code == 404
    assert health.status_code == 200
    assert health.json() == {
        "request_id": health.headers["x-request-id"],
        "status": "ok",
        "database": "ok",
    }
    (call,) = intake.rows("poundcake_api_calls")
    assert call["request_id"] == missing.headers["x-request-id"]
    assert call["path"] == "/api/v1/unknown"
    assert call["status_code"] == 404
    assert call["user_agent"] == "me"
    assert "hidden-value" not in all_stored_text(intake.engine)


# --- refusals ------------------------------------------------------------------------------


def test_oversized_bodies_and_too_many_alerts_are_413(
    tmp_path: Path, scratch_database: str
) -> None:
    config = mariadb_config(
        tmp_path, scratch_database, POUNDCAKE_MAX_BODY_BYTES=2048, POUNDCAKE_MAX_ALERTS=2
    )
    big = notification(*(am_alert(instance=f"web-{i}") for i in range(20)))
    many = notification(*(am_alert(instance=f"web-{i}") for i in range(3)))

    def chunks() -> Iterator[bytes]:
        encoded = json.dumps(big).encode()
        for offset in range(0, len(encoded), 512):
            yield encoded[offset : offset + 512]

    with running_intake(config) as intake, intake.client() as client:
        declared = client.post("/api/v1/webhook", json=big, headers=AUTH)
        streamed = client.post("/api/v1/webhook", content=chunks(), headers=AUTH)
        counted = client.post("/api/v1/webhook", json=many, headers=AUTH)
        fine = client.post("/api/v1/webhook", json=notification(am_alert()), headers=AUTH)
        intake.flush_records()
        calls = {row["request_id"]: row for row in intake.rows("poundcake_api_calls")}
        alerts = intake.rows("poundcake_alerts")

    assert "content-length" not in {k.lower() for k in streamed.request.headers}
    for response in (declared, streamed, counted):
        assert response.status_code == 413
        assert response.json()["request_id"] == response.headers["x-request-id"]
        assert calls[response.headers["x-request-id"]]["status_code"] == 413
    assert "larger than 2048 bytes" in declared.json()["error"]
    assert "3 alerts in one request; at most 2" in counted.json()["error"]
    assert fine.status_code == 202
    assert len(alerts) == 1


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"{not json", "the body is not JSON"),
        (b"[1, 2]", "the body is not a JSON object"),
        (b'{"version": "4", "alerts": "none"}', "alerts must be a list"),
        (b'{"version": "4"}', "alerts must be a list"),
    ],
)
def test_a_body_that_is_not_a_notification_is_400(
    intake: Intake, content: bytes, error: str
) -> None:
    with intake.client() as client:
        response = client.post(
            "/api/v1/webhook",
            content=content,
            headers={**AUTH, "Content-Type": "application/json"},
        )

    assert response.status_code == 400
    assert response.json() == {"request_id": response.headers["x-request-id"], "error": error}
    assert intake.rows("poundcake_alerts") == []
    intake.flush_records()
    (call,) = intake.rows("poundcake_api_calls")
    assert call["status_code"] == 400
    assert call["body_size"] == len(content)


def test_an_unreachable_database_is_503_never_2xx_or_4xx(config: PoundCakeConfig) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    url = config.database.url.set(host="127.0.0.1", port=port, query={"charset": "utf8mb4"})
    with running_intake(config, make_engine(url)) as intake, intake.client() as client:
        webhook = client.post("/api/v1/webhook", json=notification(am_alert()), headers=AUTH)
        health = client.get("/health")
        missing = client.get("/api/v1/nothing", headers={"X-Request-ID": "offline-check-1"})
        intake.flush_records()

    assert webhook.status_code == 503
    assert webhook.headers["retry-after"]
    assert webhook.json() == {
        "request_id": webhook.headers["x-request-id"],
        "error": "database unavailable",
    }
    assert health.status_code == 503
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "offline-check-1"
    assert intake.queued() == []


# --- load ----------------------------------------------------------------------------------


def test_concurrent_load_is_all_202_without_deadlock_errors(intake: Intake) -> None:
    # 40 episodes shared by every sender, in different orders: rows locked concurrently.
    episodes = [am_alert(instance=f"host-{i:02d}") for i in range(40)]
    bodies = [
        notification(*[episodes[(i * 7 + j) % 40] for j in range(1 + i % 5)][:: 1 - 2 * (i % 2)])
        for i in range(200)
    ]
    statuses: list[int] = []
    lock = threading.Lock()

    def sender(part: int) -> None:
        with intake.client() as client:
            for body in bodies[part::8]:
                response = client.post("/api/v1/webhook", json=body, headers=AUTH)
                with lock:
                    statuses.append(response.status_code)

    threads = [threading.Thread(target=sender, args=(part,)) for part in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [202] * 200
    expected_deliveries = sum(len(body["alerts"]) for body in bodies)
    deliveries = intake.rows("poundcake_alert_deliveries")
    assert len(deliveries) == expected_deliveries
    alerts = intake.rows("poundcake_alerts")
    assert sum(row["delivery_count"] for row in alerts) == expected_deliveries
    assert len(intake.rows("poundcake_api_calls")) == 200
    assert sorted(i for ids in intake.queued() for i in ids) == [row["id"] for row in deliveries]


def test_sqlite_embedded_default_accepts_too(tmp_path: Path) -> None:
    conf = tmp_path / "st2.conf"
    conf.write_text(f"[database]\nbackend = sqlite\ndb_name = {tmp_path / 'pc.sqlite3'}\n")
    st2 = load_st2_config(conf)
    setup_engine_schema(st2)
    config = PoundCakeConfig(
        settings=settings_for(tmp_path),
        database=DatabaseTarget(url=st2.database.url, setting="test"),
        engine_database=st2.database,
    )
    setup_poundcake_schema(config)
    firing = am_alert()
    resolved = dict(firing, status="resolved", endsAt="2026-05-01T11:00:00Z")
    with running_intake(config) as intake:
        responses = [intake.post(notification(firing)) for _ in range(2)]
        responses.append(intake.post(notification(resolved)))
        responses.append(intake.post(notification(firing)))
        (episode,) = intake.rows("poundcake_alerts")
        deliveries = intake.rows("poundcake_alert_deliveries")

    assert [r.status_code for r in responses] == [202] * 4
    assert episode["delivery_count"] == 4
    assert episode["status"] == "resolved"
    assert json.loads(episode["request_ids"]) == [r.json()["request_id"] for r in responses]
    assert len(deliveries) == 4
    assert os.path.exists(tmp_path / "pc.sqlite3")


def test_a_failing_task_queue_never_fails_the_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conf = tmp_path / "st2.conf"
    conf.write_text(f"[database]\nbackend = sqlite\ndb_name = {tmp_path / 'pc.sqlite3'}\n")
    st2 = load_st2_config(conf)
    setup_engine_schema(st2)
    config = PoundCakeConfig(
        settings=settings_for(tmp_path),
        database=DatabaseTarget(url=st2.database.url, setting="test"),
        engine_database=st2.database,
    )
    setup_poundcake_schema(config)
    engine = make_poundcake_engine(config)
    calls: list[list[int]] = []

    def broken(ids: Any) -> None:
        calls.append(list(ids))
        raise ConnectionError("broker down")

    app = create_app(config, sessions=make_session_factory(engine), enqueue=broken)
    try:
        with serve(app) as url, httpx.Client(base_url=url) as client:
            first = client.post("/api/v1/webhook", json=notification(am_alert()), headers=AUTH)
            assert app.state.poundcake.handoff.flush()
            second = client.post("/api/v1/webhook", json=notification(am_alert()), headers=AUTH)
            assert app.state.poundcake.handoff.flush()
    finally:
        engine.dispose()

    assert [first.status_code, second.status_code] == [202, 202]
    assert calls == [[1], [2]]
    assert "Could not queue 1 deliveries; the relay will" in caplog.text
