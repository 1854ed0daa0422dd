"""``/health/live``, ``/health/ready`` and ``/metrics`` of poundcake-api and the engine API, on
real uvicorn servers, a real MariaDB scratch database, Redis and RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from poundcake.config import (
    DatabaseTarget,
    PoundCakeConfig,
    load_st2_config,
    normalise_database_url,
)
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.migrate import setup_engine_schema
from poundcake.engine.api.app import create_app as create_engine_app
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.runtime import make_runtime
from poundcake.ids import new_id
from poundcake.remediation.aftercare.models import Silence
from poundcake.remediation.alerts.models import Alert, AlertDelivery
from poundcake.remediation.tracking.models import ExecutionExtension
from tests.integration.support.engine_stack import rabbitmq_vhost, write_st2_conf
from tests.integration.support.intake import (
    AUTH,
    Intake,
    am_alert,
    mariadb_config,
    notification,
    running_intake,
    serve,
)
from tests.integration.support.redis_db import claim_redis_database, redis_url
from tests.integration.support.st2cli import free_port

UNRECORDED = ("/health/live", "/health/ready", "/metrics")
SECRET_PASSWORD = "pw-not-for-bodies-71c"


@pytest.fixture
def redis_database() -> Iterator[int]:
    with claim_redis_database() as database:
        yield database


@pytest.fixture
def config(tmp_path: Path, scratch_database: str, redis_database: int) -> PoundCakeConfig:
    return mariadb_config(tmp_path, scratch_database, REDIS_URL=redis_url(redis_database))


@pytest.fixture
def intake(config: PoundCakeConfig) -> Iterator[Intake]:
    with running_intake(config) as running:
        yield running


def scrape(url: str) -> dict[str, list[Sample]]:
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        family.name: list(family.samples)
        for family in text_string_to_metric_families(response.text)
    }


def values(samples: list[Sample], name: str, *label_names: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(sample.labels[label] for label in label_names): sample.value
        for sample in samples
        if sample.name == name
    }


# --- health -----------------------------------------------------------------------------------


def test_live_and_ready_answer_without_auth_and_are_never_recorded(intake: Intake) -> None:
    live = httpx.get(f"{intake.url}/health/live", timeout=30)
    assert live.status_code == 200
    assert live.json() == {"status": "live", "service": "poundcake-api"}
    ready = httpx.get(f"{intake.url}/health/ready", timeout=30)
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert body["not_ready"] == []
    assert body["checks"]["database"] == {"status": "ok", "required": True}
    assert body["checks"]["broker"] == {"status": "ok", "required": False}
    assert httpx.get(f"{intake.url}/health", timeout=30).status_code == 200
    assert httpx.get(f"{intake.url}/metrics", timeout=30).status_code == 200
    assert intake.post(notification(am_alert())).status_code == 202
    intake.flush_records()
    paths = {row["path"] for row in intake.rows("poundcake_api_calls")}
    assert paths == {"/api/v1/webhook"}
    assert not paths & {*UNRECORDED, "/health"}


def test_ready_is_503_naming_the_database_without_revealing_its_url(
    config: PoundCakeConfig,
) -> None:
    url = f"mysql+pymysql://poundcake:{SECRET_PASSWORD}@127.0.0.1:{free_port()}/nowhere"
    target = DatabaseTarget(url=normalise_database_url(url, "DATABASE_URL", Path()), setting="x")
    broken = PoundCakeConfig(
        settings=config.settings, database=target, engine_database=config.engine_database
    )
    with running_intake(broken, make_poundcake_engine(broken, pool_size=1)) as intake:
        ready = httpx.get(f"{intake.url}/health/ready", timeout=60)
        live = httpx.get(f"{intake.url}/health/live", timeout=30)
    assert live.status_code == 200
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["status"] == "not ready"
    assert body["not_ready"] == ["database"]
    assert body["checks"]["database"]["status"] == "unreachable"
    assert SECRET_PASSWORD not in ready.text
    assert "127.0.0.1" not in ready.text


def test_the_engine_api_is_ready_with_its_database_and_broker(
    tmp_path: Path, scratch_database: str
) -> None:
    with rabbitmq_vhost() as messaging:
        path = write_st2_conf(tmp_path / "st2.conf", scratch_database, messaging)
        st2 = load_st2_config(path)
        setup_engine_schema(st2)
        runtime = make_runtime(st2, pool_size=2)
        try:
            with serve(create_engine_app(runtime, ["api"])) as url:
                live = httpx.get(f"{url}/health/live", timeout=30)
                ready = httpx.get(f"{url}/health/ready", timeout=30)
                unauthenticated = httpx.get(f"{url}/v1/actions", timeout=30)
        finally:
            runtime.close()
    assert live.status_code == 200
    assert live.json() == {"status": "live", "service": "st2api"}
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "database": {"status": "ok", "required": True},
        "broker": {"status": "ok", "required": True},
    }
    assert unauthenticated.status_code == 401


def test_the_engine_api_without_its_broker_is_not_ready_but_st2auth_is(
    tmp_path: Path, scratch_database: str
) -> None:
    dead_broker = f"amqp://guest:{SECRET_PASSWORD}@127.0.0.1:{free_port()}//"
    path = write_st2_conf(tmp_path / "st2.conf", scratch_database, dead_broker)
    st2 = load_st2_config(path)
    setup_engine_schema(st2)
    runtime = make_runtime(st2, pool_size=2)
    try:
        with serve(create_engine_app(runtime, ["api"])) as api_url:
            api = httpx.get(f"{api_url}/health/ready", timeout=60)
        with serve(create_engine_app(runtime, ["auth"])) as auth_url:
            auth = httpx.get(f"{auth_url}/health/ready", timeout=60)
    finally:
        runtime.close()
    assert api.status_code == 503, api.text
    assert api.json()["not_ready"] == ["broker"]
    assert api.json()["checks"]["database"]["status"] == "ok"
    assert SECRET_PASSWORD not in api.text
    assert auth.status_code == 200, auth.text
    assert auth.json()["service"] == "st2auth"
    assert auth.json()["checks"]["broker"] == {"status": "unreachable", "required": False}


# --- metrics ----------------------------------------------------------------------------------


def _execution(
    session: Any, cab: str, alert: str, status: str, seconds: float | None, order: int
) -> None:
    started = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    execution = ExecutionDB(
        id=new_id(),
        action="core.local",
        runner_type="local-shell-cmd",
        status=status,
        start_timestamp=started,
        end_timestamp=None if seconds is None else started + timedelta(seconds=seconds),
    )
    session.add(execution)
    session.flush()
    session.add(
        ExecutionExtension(
            id=new_id(),
            st2_execution_id=execution.id,
            request_id=f"req-{order}",
            alert_id=alert,
            cab_name=cab,
            step_order=order,
            status=status,
            created_at=started,
            updated_at=started,
        )
    )


def test_metrics_match_the_rows(intake: Intake, redis_database: int) -> None:
    alerts = [am_alert(instance=f"web-{number}") for number in range(4)]
    assert intake.post(notification(*alerts)).status_code == 202
    assert intake.post(notification(am_alert(name="Other"))).status_code == 202
    unauthorised = httpx.post(f"{intake.url}/api/v1/webhook", json={}, timeout=30)
    assert unauthorised.status_code == 401
    assert httpx.post(f"{intake.url}/webhook", content=b"{", headers=AUTH).status_code == 400
    with intake.sessions() as session:
        ids = sorted(session.scalars(sa.select(Alert.id)))
        for alert_id, state, cab in (
            (ids[0], "remediated", "disk_full"),
            (ids[1], "failed", "disk_full"),
            (ids[2], "remediated", "restart"),
            (ids[3], "remediating", "disk_full"),
        ):
            session.execute(
                sa.update(Alert).where(Alert.id == alert_id).values(state=state, cab_name=cab)
            )
        for alert_id, values_ in (
            (ids[0], {"verification": "verified"}),
            (ids[1], {"abandoned_retries": 2}),
            (ids[2], {"verification": "unverified", "verification_reason": "firing; escalated"}),
            (ids[3], {"verification": "unverified", "verification_reason": "firing"}),
        ):
            session.execute(sa.update(Alert).where(Alert.id == alert_id).values(**values_))
        now = datetime.now(UTC)
        session.add(
            Silence(
                id=new_id(),
                alert_id=ids[3],
                request_id="r",
                cab_name="disk_full",
                state="active",
                matchers=[],
                ends_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        first_delivery = min(session.scalars(sa.select(AlertDelivery.id)))
        session.execute(
            sa.update(AlertDelivery)
            .where(AlertDelivery.id == first_delivery)
            .values(processed_at=datetime.now(UTC))
        )
        _execution(session, "disk_full", ids[0], "succeeded", 0.3, 1)
        _execution(session, "disk_full", ids[0], "succeeded", 7.0, 2)
        _execution(session, "disk_full", ids[1], "failed", 2.0, 1)
        _execution(session, "restart", ids[2], "succeeded", 45.0, 1)
        _execution(session, "disk_full", ids[3], "running", None, 1)
        session.commit()
    queue = redis.Redis.from_url(redis_url(redis_database))
    queue.lpush("poundcake", b"one", b"two", b"three")
    queue.close()

    families = scrape(intake.url)

    with intake.engine.connect() as connection:
        by_state = {
            state: count
            for state, count in connection.execute(
                sa.text("SELECT state, COUNT(*) FROM poundcake_alerts GROUP BY state")
            )
        }
        outbox = connection.scalar(
            sa.text("SELECT COUNT(*) FROM poundcake_alert_deliveries WHERE processed_at IS NULL")
        )
    assert values(families["poundcake_alerts"], "poundcake_alerts", "state") == {
        (state,): float(count) for state, count in by_state.items()
    }
    assert by_state == {"remediated": 2, "failed": 1, "remediating": 1, "received": 1}
    assert values(families["poundcake_cab_alerts"], "poundcake_cab_alerts", "cab", "state") == {
        ("disk_full", "remediated"): 1.0,
        ("disk_full", "failed"): 1.0,
        ("disk_full", "remediating"): 1.0,
        ("restart", "remediated"): 1.0,
    }
    assert outbox == 4
    assert values(families["poundcake_outbox_deliveries"], "poundcake_outbox_deliveries") == {
        (): 4.0
    }
    steps = families["poundcake_step_executions"]
    assert values(steps, "poundcake_step_executions", "cab", "status") == {
        ("disk_full", "succeeded"): 2.0,
        ("disk_full", "failed"): 1.0,
        ("disk_full", "running"): 1.0,
        ("restart", "succeeded"): 1.0,
    }
    durations = families["poundcake_step_execution_duration_seconds"]
    name = "poundcake_step_execution_duration_seconds"
    assert values(durations, f"{name}_count", "cab", "status") == {
        ("disk_full", "succeeded"): 2.0,
        ("disk_full", "failed"): 1.0,
        ("restart", "succeeded"): 1.0,
    }
    sums = values(durations, f"{name}_sum", "cab", "status")
    assert sums[("disk_full", "succeeded")] == pytest.approx(7.3)
    assert sums[("restart", "succeeded")] == pytest.approx(45.0)
    buckets = {
        sample.labels["le"]: sample.value
        for sample in durations
        if sample.name == f"{name}_bucket"
        and sample.labels["cab"] == "disk_full"
        and sample.labels["status"] == "succeeded"
    }
    assert (buckets["0.1"], buckets["0.5"], buckets["5.0"], buckets["10.0"]) == (0, 1, 1, 2)
    assert buckets["+Inf"] == 2

    intake_requests = values(
        families["poundcake_intake_requests"], "poundcake_intake_requests_total", "status"
    )
    assert intake_requests == {("202",): 2.0, ("401",): 1.0, ("400",): 1.0}
    latency = families["poundcake_intake_duration_seconds"]
    assert values(latency, "poundcake_intake_duration_seconds_count") == {(): 4.0}

    assert values(
        families["poundcake_verifications"], "poundcake_verifications", "verification", "escalated"
    ) == {
        ("verified", "false"): 1.0,
        ("unverified", "true"): 1.0,
        ("unverified", "false"): 1.0,
    }
    assert values(families["poundcake_silences"], "poundcake_silences", "state") == {
        ("active",): 1.0
    }
    resumed = families["poundcake_abandoned_runs_resumed"]
    assert values(resumed, "poundcake_abandoned_runs_resumed") == {(): 2.0}

    assert values(families["poundcake_database_up"], "poundcake_database_up") == {(): 1.0}
    assert values(families["poundcake_broker_up"], "poundcake_broker_up") == {(): 1.0}
    assert values(
        families["poundcake_celery_queue_messages"], "poundcake_celery_queue_messages", "queue"
    ) == {("poundcake",): 3.0}
    pool = values(
        families["poundcake_db_pool_connections"], "poundcake_db_pool_connections", "state"
    )
    assert set(pool) == {("checked_out",), ("idle",), ("overflow",)}
    assert values(families["poundcake_db_pool_size"], "poundcake_db_pool_size") == {(): 10.0}


def test_metrics_say_when_the_database_is_down(config: PoundCakeConfig) -> None:
    url = f"mysql+pymysql://root@127.0.0.1:{free_port()}/nowhere"
    target = DatabaseTarget(url=normalise_database_url(url, "DATABASE_URL", Path()), setting="x")
    broken = PoundCakeConfig(
        settings=config.settings, database=target, engine_database=config.engine_database
    )
    with running_intake(broken, make_poundcake_engine(broken, pool_size=1)) as intake:
        families = scrape(intake.url)
    assert values(families["poundcake_database_up"], "poundcake_database_up") == {(): 0.0}
    assert "poundcake_alerts" not in families
