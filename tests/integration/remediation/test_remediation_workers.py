"""The remediation workers on real MariaDB, Redis and a running engine.

Alerts are dispatched into the engine exactly once (replayed, concurrent, or after a crash
between the post and the commit), followed to their end state with execution extension rows,
closed when resolved, and nothing is lost when Redis loses its queue or the engine is down. The
follower's CAB path (steps, reasons, cancel on resolve) is tested end to end against the real
engine in ``tests/e2e/test_cab_follower.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import (
    DatabaseTarget,
    PoundCakeConfig,
    Settings,
    load_poundcake_config,
    load_st2_config,
)
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.migrate import setup_engine_schema, setup_poundcake_schema
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.ids import new_id
from poundcake.remediation.alerts.ids import alert_id as episode_id
from poundcake.remediation.alerts.lifecycle import (
    RESOLVED_BEFORE_REMEDIATION,
    RESOLVED_WHILE_REMEDIATING,
)
from poundcake.remediation.alerts.models import Alert, AlertDelivery
from poundcake.remediation.dispatch import process_deliveries
from poundcake.remediation.engine_api import (
    EngineClient,
    EngineNotFoundError,
    EngineUnavailableError,
)
from poundcake.remediation.resources import WorkerResources
from poundcake.remediation.tasks.app import QUEUE
from poundcake.remediation.tasks.enqueue import close_enqueue, configure_enqueue, enqueue_deliveries
from poundcake.remediation.tasks.relay import relay_outbox
from poundcake.remediation.tracking.models import ExecutionExtension
from poundcake.remediation.tracking.service import follow_remediations
from tests.integration.support.commands import BIN, command_environment
from tests.integration.support.mariadb import create_fixture_database, drop_fixture_database
from tests.integration.support.redis_db import claim_redis_database, redis_url
from tests.integration.support.st2cli import (
    SERVICES,
    RunningEngine,
    api_key_for,
    eventually,
    free_port,
    running_engine,
)

TEAM = "workers"


# --- fixtures ---------------------------------------------------------------------------------


@dataclass
class Stack:
    """The engine, PoundCake's configuration on the same database, and an API key."""

    engine: RunningEngine
    database: str
    api_key: str
    directory: Path
    config: PoundCakeConfig
    sessions: sessionmaker[Session]
    redis_database: int

    @property
    def redis_url(self) -> str:
        return redis_url(self.redis_database)

    def settings(self, **overrides: str) -> Settings:
        values = {
            "DATABASE_URL": f"mysql+pymysql://root@127.0.0.1:3306/{self.database}",
            "ST2_TABLE_PREFIX": "",
            "ST2_API_URL": self.engine.api_url,
            "ST2_API_KEY": self.api_key,
            "REDIS_URL": self.redis_url,
            "POUNDCAKE_DATA_DIR": str(self.directory / "poundcake"),
            "POUNDCAKE_RELAY_AFTER_SECONDS": "1",
            **overrides,
        }
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def environment(self, **overrides: str) -> dict[str, str]:
        settings = self.settings()
        values = {
            "DATABASE_URL": str(settings.database_url),
            "ST2_TABLE_PREFIX": "",
            "ST2_API_URL": self.engine.api_url,
            "ST2_API_KEY": self.api_key,
            "REDIS_URL": self.redis_url,
            "POUNDCAKE_RELAY_AFTER_SECONDS": "1",
            "POUNDCAKE_WORKER_CONCURRENCY": "2",
            **overrides,
        }
        env = command_environment(self.directory / "processes", **values)
        env["POUNDCAKE_DATA_DIR"] = str(self.directory / "poundcake")
        return env


def create_rule(stack: Stack) -> None:
    """A user's own rule on poundcake.alert (not a CAB): echo the alert name."""
    response = httpx.post(
        f"{stack.engine.api_url}/rules",
        headers={"St2-Api-Key": stack.api_key},
        json={
            "name": "echo_alert",
            "pack": "workers",
            "enabled": True,
            "trigger": {"type": "poundcake.alert"},
            "criteria": {"trigger.labels.team": {"type": "equals", "pattern": TEAM}},
            "action": {"ref": "core.local", "parameters": {"cmd": "echo {{ trigger.alertname }}"}},
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("remediation-workers")
    database = f"pctest_{uuid.uuid4().hex[:12]}"
    create_fixture_database(database)
    try:
        extra = "[rulesengine]\npoll_interval = 0.3\n"
        services = (*SERVICES, "st2rulesengine")
        with (
            running_engine(directory, database, services, extra) as engine,
            claim_redis_database() as redis_database,
        ):
            key = api_key_for(engine)
            partial = Stack(engine, database, key, directory, None, None, redis_database)  # type: ignore[arg-type]
            config = load_poundcake_config(partial.settings())
            setup_poundcake_schema(config)
            db_engine = make_poundcake_engine(config, pool_size=4)
            ready = Stack(
                engine,
                database,
                key,
                directory,
                config,
                make_session_factory(db_engine),
                redis_database,
            )
            create_rule(ready)
            yield ready
            db_engine.dispose()
    finally:
        drop_fixture_database(database)


@pytest.fixture
def resources(stack: Stack) -> Iterator[WorkerResources]:
    made = WorkerResources(stack.config, sessions=stack.sessions)
    yield made
    made.close()


@pytest.fixture
def redis(stack: Stack) -> Iterator[None]:
    redis_cli(stack, "FLUSHDB")
    yield
    redis_cli(stack, "FLUSHDB")


def redis_cli(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-n", str(stack.redis_database), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


# --- helpers ----------------------------------------------------------------------------------


def add_alert(
    sessions: sessionmaker[Session],
    *,
    team: str = TEAM,
    deliveries: tuple[str, ...] = ("firing",),
    **columns: Any,
) -> tuple[str, list[int]]:
    """An episode as intake stores it, with one delivery (outbox row) per status given."""
    now = datetime.now(UTC)
    fingerprint = uuid.uuid4().hex[:16]
    starts_at = now - timedelta(minutes=1)
    identifier = episode_id(fingerprint, starts_at)
    name = f"Disk{fingerprint[:6]}"
    resolved = "resolved" in deliveries
    requests = [f"req-{uuid.uuid4().hex[:12]}" for _ in deliveries or ("firing",)]
    with unit_of_work(sessions) as session:
        values: dict[str, Any] = {
            "id": identifier,
            "fingerprint": fingerprint,
            "starts_at": starts_at,
            "ends_at": now if resolved else None,
            "alert_name": name,
            "severity": "critical",
            "alertmanager_status": "resolved" if resolved else "firing",
            "state": "received",
            "labels": {"alertname": name, "team": team, "instance": "web-1"},
            "annotations": {"summary": "disk full"},
            "generator_url": "http://prometheus/graph",
            "request_id": requests[0],
            "last_request_id": requests[-1],
            "request_ids": requests,
            "delivery_count": len(requests),
            "created_at": now,
            "updated_at": now,
            "resolved_at": now if resolved else None,
            **columns,
        }
        session.add(Alert(**values))
    ids = [
        add_delivery(sessions, identifier, status, request_id)
        for request_id, status in zip(requests, deliveries, strict=False)
    ]
    return identifier, ids


def add_delivery(
    sessions: sessionmaker[Session], identifier: str, status: str, request_id: str | None = None
) -> int:
    """One more delivery of an episode."""
    with unit_of_work(sessions) as session:
        row = AlertDelivery(
            alert_id=identifier,
            request_id=request_id or f"req-{uuid.uuid4().hex[:12]}",
            alertmanager_status=status,
            receiver="poundcake",
            group_key='{}:{alertname="x"}',
            received_at=datetime.now(UTC),
            attempts=0,
        )
        session.add(row)
        session.flush()
        return row.id


def alert(sessions: sessionmaker[Session], identifier: str) -> Alert:
    with sessions() as session:
        found = session.get(Alert, identifier)
        assert found is not None
        return found


def delivery(sessions: sessionmaker[Session], identifier: int) -> AlertDelivery:
    with sessions() as session:
        found = session.get(AlertDelivery, identifier)
        assert found is not None
        return found


def extensions(sessions: sessionmaker[Session], identifier: str) -> list[ExecutionExtension]:
    with sessions() as session:
        return list(
            session.scalars(
                sa.select(ExecutionExtension)
                .where(ExecutionExtension.alert_id == identifier)
                .order_by(ExecutionExtension.step_order, ExecutionExtension.id)
            )
        )


def instances_of(sessions: sessionmaker[Session], identifier: str) -> list[TriggerInstanceDB]:
    with sessions() as session:
        found = session.scalars(
            sa.select(TriggerInstanceDB).where(TriggerInstanceDB.trigger == "poundcake.alert")
        )
        return [row for row in found if (row.payload or {}).get("alert_id") == identifier]


def follow_until(
    resources: WorkerResources, sessions: sessionmaker[Session], identifier: str, state: str
) -> Alert:
    def check() -> Alert | None:
        follow_remediations(sessions=sessions, engine_api=resources.engine_api)
        found = alert(sessions, identifier)
        return found if found.state == state else None

    result: Alert = eventually(check, f"alert {identifier} to become {state}")
    return result


# --- dispatch and follow against the real engine -----------------------------------------------


def test_a_matched_alert_is_dispatched_and_followed_to_remediated(
    stack: Stack, resources: WorkerResources
) -> None:
    identifier, [delivery_id] = add_alert(stack.sessions)
    outcome = process_deliveries(resources, [delivery_id])
    [instance] = instances_of(stack.sessions, identifier)
    assert outcome.processed == {delivery_id: f"dispatched as trigger instance {instance.id}"}

    stored = delivery(stack.sessions, delivery_id)
    assert stored.processed_at is not None
    episode = alert(stack.sessions, identifier)
    assert (episode.trigger_instance_id, episode.state) == (instance.id, "received")
    payload = instance.payload
    assert payload["__context"] == {
        "request_id": stored.request_id,
        "alert_id": identifier,
        "dispatch_key": episode.dispatch_key,
    }
    assert payload["labels"]["team"] == TEAM
    assert payload["status"] == "firing"
    assert payload["starts_at"].endswith("Z")

    done = follow_until(resources, stack.sessions, identifier, "remediated")
    assert done.state_reason == "every rule's execution succeeded"
    [row] = extensions(stack.sessions, identifier)
    assert (row.request_id, row.step_order, row.action_ref) == (stored.request_id, 0, "core.local")
    assert (row.status, row.result_matched, row.cab_name) == ("succeeded", True, None)
    with stack.sessions() as session:
        execution = session.get(ExecutionDB, row.st2_execution_id)
        assert execution is not None
        assert execution.context["request_id"] == stored.request_id
        assert execution.context["alert_id"] == identifier
        assert execution.result["stdout"].strip() == episode.alert_name

    # Followed to the end: more passes change nothing.
    follow_remediations(sessions=stack.sessions, engine_api=resources.engine_api)
    assert alert(stack.sessions, identifier).updated_at == done.updated_at


def test_an_alert_no_rule_matches_ends_unmatched(stack: Stack, resources: WorkerResources) -> None:
    identifier, [delivery_id] = add_alert(stack.sessions, team="nobody")
    process_deliveries(resources, [delivery_id])
    assert len(instances_of(stack.sessions, identifier)) == 1
    done = follow_until(resources, stack.sessions, identifier, "unmatched")
    assert done.state_reason == "no CAB or rule matched the alert"
    assert extensions(stack.sessions, identifier) == []


@pytest.mark.parametrize("order", ["firing first", "resolved first"])
def test_an_alert_resolved_before_dispatch_is_never_dispatched(
    stack: Stack, resources: WorkerResources, order: str
) -> None:
    identifier, [firing, resolved] = add_alert(stack.sessions, deliveries=("firing", "resolved"))
    ids = [firing, resolved] if order == "firing first" else [resolved, firing]
    for delivery_id in ids:
        process_deliveries(resources, [delivery_id])
    episode = alert(stack.sessions, identifier)
    assert (episode.state, episode.state_reason) == ("resolved", RESOLVED_BEFORE_REMEDIATION)
    assert (episode.dispatch_key, episode.trigger_instance_id) == (None, None)
    assert delivery(stack.sessions, firing).outcome.startswith("not dispatched")  # type: ignore[union-attr]
    assert delivery(stack.sessions, resolved).outcome == "resolved the episode (was received)"
    assert instances_of(stack.sessions, identifier) == []
    follow_remediations(sessions=stack.sessions, engine_api=resources.engine_api)
    assert alert(stack.sessions, identifier).state == "resolved"


def test_replayed_and_concurrent_deliveries_dispatch_the_episode_once(
    stack: Stack, resources: WorkerResources
) -> None:
    identifier, [first, repeat] = add_alert(stack.sessions, deliveries=("firing", "firing"))
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def worker(ids: list[int]) -> None:
        barrier.wait()
        try:
            process_deliveries(resources, ids)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [
        threading.Thread(target=worker, args=([first],)),
        threading.Thread(target=worker, args=([first],)),
        threading.Thread(target=worker, args=([repeat, first],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    for _ in range(3):
        replay = process_deliveries(resources, [first, repeat])
        assert replay.processed == {}
        assert sorted(replay.skipped) == sorted([first, repeat])

    [instance] = instances_of(stack.sessions, identifier)
    assert alert(stack.sessions, identifier).trigger_instance_id == instance.id
    outcomes = {delivery(stack.sessions, i).outcome for i in (first, repeat)}
    assert f"dispatched as trigger instance {instance.id}" in outcomes
    assert len(outcomes) == 2


class CrashAfterPost:
    """The real engine client, but the worker "dies" right after the engine stored the alert."""

    def __init__(self, real: EngineClient) -> None:
        self.real = real
        self.posted: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def dispatch_alert(self, payload: Mapping[str, Any]) -> list[str]:
        self.posted.extend(self.real.dispatch_alert(payload))
        raise EngineUnavailableError("the connection dropped before the answer was read")


def test_a_dispatch_lost_between_post_and_commit_is_found_not_repeated(
    stack: Stack, resources: WorkerResources
) -> None:
    identifier, [delivery_id] = add_alert(stack.sessions)
    real = EngineClient.from_settings(stack.settings())
    crash = CrashAfterPost(real)
    crashing = WorkerResources(stack.config, sessions=stack.sessions, engine_api=crash)  # type: ignore[arg-type]
    with pytest.raises(EngineUnavailableError):
        process_deliveries(crashing, [delivery_id])
    episode = alert(stack.sessions, identifier)
    assert episode.dispatch_key is not None and episode.trigger_instance_id is None
    stored = delivery(stack.sessions, delivery_id)
    assert (stored.processed_at, stored.outcome) == (None, "dispatching")
    # The claim was given back: the retry may take the delivery at once.
    assert stored.relayed_at is not None and stored.relayed_at <= datetime.now(UTC)

    outcome = process_deliveries(resources, [delivery_id])
    [instance] = instances_of(stack.sessions, identifier)
    assert crashing.engine_api.posted == [instance.id]  # type: ignore[attr-defined]
    assert outcome.processed == {delivery_id: f"dispatched as trigger instance {instance.id}"}
    assert alert(stack.sessions, identifier).trigger_instance_id == instance.id
    real.close()


def test_a_resolved_delivery_after_dispatch_keeps_following(
    stack: Stack, resources: WorkerResources
) -> None:
    identifier, [firing, resolved] = add_alert(stack.sessions, deliveries=("firing", "resolved"))
    with unit_of_work(stack.sessions) as session:
        # Intake saw the firing delivery first; the resolved one arrives after the dispatch.
        session.execute(
            sa.update(Alert)
            .where(Alert.id == identifier)
            .values(alertmanager_status="firing", resolved_at=None)
        )
    process_deliveries(resources, [firing])
    process_deliveries(resources, [resolved])
    episode = alert(stack.sessions, identifier)
    assert (episode.state, episode.state_reason) == ("resolved", RESOLVED_WHILE_REMEDIATING)

    def recorded() -> str | None:
        follow_remediations(sessions=stack.sessions, engine_api=resources.engine_api)
        reason = alert(stack.sessions, identifier).state_reason
        return reason if reason != RESOLVED_WHILE_REMEDIATING else None

    reason = eventually(recorded, "the remediation of a resolved alert to be recorded")
    assert reason == "resolved; every rule's execution succeeded"
    assert alert(stack.sessions, identifier).state == "resolved"
    assert [row.status for row in extensions(stack.sessions, identifier)] == ["succeeded"]


# --- Celery workers as processes ------------------------------------------------------------------


@dataclass
class Processes:
    """``poundcake-worker`` / ``poundcake-beat`` processes started by a test."""

    directory: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, command: str, env: dict[str, str], *args: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            [str(BIN / command), *args],
            env=env,
            cwd=self.directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, name: str) -> None:
        process = self.running.pop(name)
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path / "processes")
    yield started
    started.stop_all()


@pytest.fixture
def publisher(stack: Stack) -> Iterator[None]:
    configure_enqueue(stack.settings())
    yield
    close_enqueue()


@pytest.mark.usefixtures("redis", "publisher")
def test_the_relay_rebuilds_a_queue_that_redis_lost(stack: Stack, processes: Processes) -> None:
    matched, [first] = add_alert(stack.sessions)
    unmatched, [second] = add_alert(stack.sessions, team="nobody")
    enqueue_deliveries([first, second])
    assert redis_cli(stack, "LLEN", QUEUE) == "1"
    redis_cli(stack, "FLUSHDB")
    assert redis_cli(stack, "LLEN", QUEUE) == "0"

    env = stack.environment()
    processes.start("worker", "poundcake-worker", env)
    processes.start("beat", "poundcake-beat", env)

    def settled() -> bool:
        return (
            alert(stack.sessions, matched).state == "remediated"
            and alert(stack.sessions, unmatched).state == "unmatched"
        )

    eventually(settled, "the relayed deliveries to be processed and followed", timeout=90)
    for delivery_id in (first, second):
        stored = delivery(stack.sessions, delivery_id)
        assert stored.processed_at is not None
        assert stored.attempts >= 1, "handed out again by the relay"
    assert len(instances_of(stack.sessions, matched)) == 1
    assert len(extensions(stack.sessions, matched)) == 1
    assert "Relayed" in processes.log("worker")


@pytest.mark.usefixtures("redis", "publisher")
def test_with_the_engine_down_the_task_retries_and_nothing_is_lost(
    stack: Stack, processes: Processes
) -> None:
    identifier, [delivery_id] = add_alert(stack.sessions)
    down = stack.environment(ST2_API_URL=f"http://127.0.0.1:{free_port()}/v1")
    processes.start("worker-down", "poundcake-worker", down)
    enqueue_deliveries([delivery_id])

    retries = "Deliveries wait for the engine or the database"
    eventually(
        lambda: processes.log("worker-down").count(retries) >= 3,
        "the task to retry three times",
        timeout=60,
    )
    stored = delivery(stack.sessions, delivery_id)
    assert stored.processed_at is None
    assert stored.outcome == "dispatching"
    assert stored.relayed_at is not None
    assert alert(stack.sessions, identifier).trigger_instance_id is None
    assert "cannot reach the engine" in processes.log("worker-down")
    assert stack.api_key not in processes.log("worker-down")
    processes.stop("worker-down")

    env = stack.environment()
    processes.start("worker", "poundcake-worker", env)
    processes.start("beat", "poundcake-beat", env)
    eventually(
        lambda: alert(stack.sessions, identifier).state == "remediated",
        "the delivery to be dispatched once the engine is back",
        timeout=120,
    )
    assert delivery(stack.sessions, delivery_id).processed_at is not None
    assert len(instances_of(stack.sessions, identifier)) == 1


# --- the embedded default: SQLite ---------------------------------------------------------------


class LocalEngine:
    """An engine that stores dispatched alerts in memory and matches no rule."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.instances: dict[str, Mapping[str, Any]] = {}

    def dispatch_alert(self, payload: Mapping[str, Any]) -> list[str]:
        time.sleep(0.05)  # long enough for racing workers to overlap
        with self.lock:
            instance_id = new_id()
            self.instances[instance_id] = payload
        return [instance_id]

    def find_dispatched(self, dispatch_key: str, since: datetime) -> list[str]:
        with self.lock:
            return [
                instance_id
                for instance_id, payload in self.instances.items()
                if payload["__context"]["dispatch_key"] == dispatch_key
            ]

    def get_trigger_instance(self, instance_id: str) -> dict[str, Any]:
        return {"id": instance_id, "status": "processed"}

    def rule_enforcements(self, trigger_instance_id: str) -> list[dict[str, Any]]:
        return []

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        raise EngineNotFoundError(execution_id, 404)

    def children(self, execution_id: str) -> list[dict[str, Any]]:
        return []

    def cancel_execution(self, execution_id: str) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        return None


@pytest.fixture
def sqlite_resources(tmp_path: Path) -> Iterator[tuple[WorkerResources, LocalEngine]]:
    conf = tmp_path / "st2.conf"
    conf.write_text(f"[database]\nbackend = sqlite\ndb_name = {tmp_path / 'pc.sqlite3'}\n")
    st2 = load_st2_config(conf)
    setup_engine_schema(st2)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, POUNDCAKE_DATA_DIR=str(tmp_path / "data"), POUNDCAKE_RELAY_AFTER_SECONDS=60
    )
    config = PoundCakeConfig(
        settings=settings,
        database=DatabaseTarget(url=st2.database.url, setting="test"),
        engine_database=st2.database,
    )
    setup_poundcake_schema(config)
    engine = LocalEngine()
    db_engine = make_poundcake_engine(config)
    made = WorkerResources(config, sessions=make_session_factory(db_engine), engine_api=engine)
    yield made, engine
    db_engine.dispose()


def test_the_embedded_sqlite_default_dispatches_once_and_relays(
    sqlite_resources: tuple[WorkerResources, LocalEngine],
) -> None:
    resources, engine = sqlite_resources
    sessions = resources.sessions
    one, first_ids = add_alert(sessions, deliveries=("firing", "firing"))
    two, second_ids = add_alert(sessions, deliveries=("firing",))
    ids = [*first_ids, *second_ids]
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            process_deliveries(resources, ids)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(payload["alert_id"] for payload in engine.instances.values()) == sorted(
        [one, two]
    )
    assert all(delivery(sessions, i).processed_at is not None for i in ids)

    # Followed: no rule matched.
    follow_remediations(sessions=sessions, engine_api=engine)
    assert alert(sessions, one).state == "unmatched"

    # A resolved delivery closes the episode and keeps the remediation outcome.
    resolved = add_delivery(sessions, one, "resolved")
    process_deliveries(resources, [resolved])
    episode = alert(sessions, one)
    assert (episode.state, episode.state_reason) == ("resolved", "no CAB or rule matched the alert")

    # The relay: a delivery left over long enough is handed out once, then backs off.
    late = add_delivery(sessions, two, "firing")
    with unit_of_work(sessions) as session:
        session.execute(
            sa.update(AlertDelivery)
            .where(AlertDelivery.id == late)
            .values(received_at=datetime.now(UTC) - timedelta(minutes=2))
        )
    sent: list[list[int]] = []
    assert relay_outbox(resources, lambda chunk: sent.append(list(chunk))) == 1
    assert relay_outbox(resources, lambda chunk: sent.append(list(chunk))) == 0
    assert sent == [[late]]
    stored = delivery(sessions, late)
    assert stored.attempts == 1
    instance = alert(sessions, two).trigger_instance_id
    assert process_deliveries(resources, [late]).processed == {
        late: f"repeat: already dispatched as trigger instance {instance}"
    }
