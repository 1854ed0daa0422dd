"""``st2ctl status``, ``poundcake status`` and ``poundcake reload`` as an operator runs them:
real MariaDB, RabbitMQ and Redis, real processes started by ``poundcake start``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from poundcake.config import PoundCakeConfig, load_st2_config
from poundcake.db.migrate import setup_engine_schema
from poundcake.engine.messaging import Publisher
from tests.integration.support.commands import CommandResult, command_environment, run_command
from tests.integration.support.engine_stack import rabbitmq_vhost, write_st2_conf
from tests.integration.support.intake import (
    am_alert,
    mariadb_config,
    notification,
    running_intake,
)
from tests.integration.support.redis_db import claim_redis_database, redis_url
from tests.integration.support.st2cli import eventually, free_port

KEY = "status-test-engine-key-3b9d0f5e2a"
PROCESSES = ("poundcake-api", "poundcake-worker", "poundcake-beat")
_PID_LINE = re.compile(r"^(poundcake-\w+) PID: (\d+)$", re.MULTILINE)


def st2ctl_status(config: Path, tmp_path: Path) -> CommandResult:
    env = command_environment(tmp_path)
    return run_command("st2ctl", "status", "--config-file", str(config), env=env)


def test_st2ctl_status_reports_database_broker_and_queue_depths(
    tmp_path: Path, scratch_database: str
) -> None:
    with rabbitmq_vhost() as messaging:
        extra = f"\n[system]\nrun_dir = {tmp_path / 'run'}\nlog_dir = {tmp_path / 'logs'}\n"
        path = write_st2_conf(tmp_path / "st2.conf", scratch_database, messaging, extra)
        setup_engine_schema(load_st2_config(path))
        publisher = Publisher(messaging)
        try:
            publisher.work("liveaction-1", "execution-1")
            publisher.work("liveaction-2", "execution-2")
            publisher.requested("liveaction-3", "execution-3")
        finally:
            publisher.close()
        status = st2ctl_status(path, tmp_path)
    assert status.returncode == 3, status.stdout + status.stderr
    assert "st2api is not running." in status.stdout
    assert "database: ok (mysql+pymysql://root@127.0.0.1:3306/" in status.stdout
    assert "broker: ok (amqp://guest:**@127.0.0.1:5672/" in status.stdout
    assert "guest:guest" not in status.stdout
    assert "queue st2.actionrunner.work: 2 message(s) waiting" in status.stdout
    assert "queue st2.scheduler.requested: 1 message(s) waiting" in status.stdout
    assert "queue st2.actionrunner.workflows: 0 message(s) waiting" in status.stdout


def test_st2ctl_status_names_a_broker_that_is_down(tmp_path: Path, scratch_database: str) -> None:
    dead = f"amqp://guest:hidden-pw@127.0.0.1:{free_port()}//"
    path = write_st2_conf(tmp_path / "st2.conf", scratch_database, dead)
    status = st2ctl_status(path, tmp_path)
    assert status.returncode == 3
    assert re.search(
        r"^broker: unreachable at amqp://guest:\*\*@127\.0\.0\.1:\d+// \(required\)$",
        status.stdout,
        re.MULTILINE,
    ), status.stdout
    assert "database: ok" in status.stdout
    assert "hidden-pw" not in status.stdout


def test_st2ctl_status_on_the_embedded_default(tmp_path: Path) -> None:
    env = command_environment(tmp_path)
    status = run_command("st2ctl", "status", env=env)
    assert status.returncode == 3, status.stdout + status.stderr
    assert f"database: ok (sqlite:///{tmp_path / 'data'}" in status.stdout
    assert "broker: ok (sqla+sqlite:///" in status.stdout
    assert "queue st2.actionrunner.work: 0 message(s) waiting" in status.stdout


@pytest.fixture
def poundcake_env(tmp_path: Path, scratch_database: str) -> Iterator[dict[str, str]]:
    with claim_redis_database() as database:
        config: PoundCakeConfig = mariadb_config(tmp_path, scratch_database)
        with running_intake(config) as intake:
            assert intake.post(notification(am_alert(), am_alert(instance="b"))).status_code == 202
        key_file = tmp_path / "engine-key"
        key_file.write_text(KEY + "\n")
        env = command_environment(
            tmp_path,
            DATABASE_URL=f"mysql+pymysql://root@127.0.0.1:3306/{scratch_database}",
            ST2_TABLE_PREFIX="",
            REDIS_URL=redis_url(database),
            ST2_API_KEY_FILE=str(key_file),
            ST2_API_URL=f"http://127.0.0.1:{free_port()}/v1",
            ST2_STREAM_URL=f"http://127.0.0.1:{free_port()}/v1/stream",
            POUNDCAKE_PORT=str(free_port()),
            POUNDCAKE_WORKER_CONCURRENCY="2",
            POUNDCAKE_WEBHOOK_TOKENS="status-test-token",
        )
        yield env
        run_command("poundcake", "stop", env=env)


def test_poundcake_status_reports_outbox_and_queue_and_exits_3_when_down(
    poundcake_env: dict[str, str],
) -> None:
    status = run_command("poundcake", "status", env=poundcake_env)
    assert status.returncode == 3, status.stdout + status.stderr
    for name in PROCESSES:
        assert f"{name} is not running." in status.stdout
    assert "database: ok (mysql+pymysql://root@127.0.0.1:3306/" in status.stdout
    assert "celery broker: ok (redis://127.0.0.1:6379/" in status.stdout
    assert "queue poundcake: 0 message(s) waiting" in status.stdout
    assert "outbox: 2 unprocessed deliveries" in status.stdout

    down = {**poundcake_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    broken = run_command("poundcake", "status", env=down)
    assert broken.returncode == 3
    assert "celery broker: unreachable at redis://127.0.0.1:" in broken.stdout
    assert "(required)" in broken.stdout


def test_running_processes_report_up_and_reload_on_sighup(
    poundcake_env: dict[str, str], tmp_path: Path
) -> None:
    started = run_command("poundcake", "start", env=poundcake_env)
    assert started.returncode == 0, started.stdout + started.stderr
    status = run_command("poundcake", "status", env=poundcake_env)
    assert status.returncode == 0, status.stdout + status.stderr
    pids = dict(_PID_LINE.findall(status.stdout))
    assert sorted(pids) == sorted(PROCESSES)
    logs = tmp_path / "data" / "logs"

    def worker_ready() -> bool:
        return "ready" in (logs / "poundcake-worker.log").read_text(errors="replace")

    eventually(worker_ready, "the worker to be ready", 60)
    reloaded = run_command("poundcake", "reload", env=poundcake_env)
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    for name in PROCESSES:
        assert f"{name} (PID {pids[name]}) reloads." in reloaded.stdout

    def log(name: str) -> str:
        return (logs / f"{name}.log").read_text(errors="replace")

    def all_reloaded() -> bool:
        return all(
            f"{name}: reloaded; the engine API key is read again from" in log(name)
            for name in PROCESSES
        )

    eventually(all_reloaded, "every process to log its reload", 30)
    after = run_command("poundcake", "status", env=poundcake_env)
    assert after.returncode == 0, after.stdout
    assert dict(_PID_LINE.findall(after.stdout)) == pids
    for name in PROCESSES:
        assert KEY not in log(name)
    worker_log = log("poundcake-worker")
    assert "Restarting celery worker" not in worker_log
    assert "exited with" not in worker_log
    # The install guide restarts the API after a restore or a key rotation
    # (``docker-compose restart api``); here: ``poundcake restart poundcake-api``.
    restarted = run_command("poundcake", "restart", "poundcake-api", env=poundcake_env)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "poundcake-api stopped." in restarted.stdout
    assert "poundcake-api started (PID" in restarted.stdout
    again = run_command("poundcake", "status", env=poundcake_env)
    assert again.returncode == 0, again.stdout
    now = dict(_PID_LINE.findall(again.stdout))
    assert now["poundcake-api"] != pids["poundcake-api"]
    assert {name: now[name] for name in PROCESSES if name != "poundcake-api"} == {
        name: pids[name] for name in PROCESSES if name != "poundcake-api"
    }
