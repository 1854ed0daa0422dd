"""The whole product as processes on a private Redis, broken on purpose under load.

All these tests share one running product (the ``faulty`` fixture), so they live in one module:
the suite runs a module on one worker. Each test leaves every service running again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from typing import Any

from tests.e2e.stack import TOKEN, Product, wait_for_health
from tests.faults.conftest import FaultProduct
from tests.faults.load import (
    LOAD_WORKFLOW,
    SLOW_ALERT_NAME,
    TERMINAL_EXECUTIONS,
    Sender,
    assert_exactly_once,
    dispatches,
    execution_statuses,
    query,
    side_effects,
    wait_settled,
)
from tests.faults.processes import forget, kill, process, running, start
from tests.integration.support.st2cli import eventually

WORKER_KILL_ALERTS = 40
KILLS = 4
REDIS_ALERTS = 30
ABANDON_WITHIN = 60
SIGTERM_ALERTS = 40
DRAIN_SECONDS = 30
# uvicorn finishes its graceful shutdown, then raises the signal it caught again (exit -15).
HTTP_SERVICES = ("poundcake-api", "st2api", "st2auth", "st2stream")
UVICORN_DONE = "Finished server process"


def assert_every_alert_remediated_once(
    product: Product, faulty: FaultProduct, sender: Sender, keys: list[str]
) -> None:
    """Every alert was accepted, ended remediated, ran its side effect once, dispatched once."""
    assert not sender.rejected, sender.rejected[:3]
    assert sorted(sender.accepted) == sorted(keys)
    states = wait_settled(product.database, keys, timeout=300)
    assert set(states.values()) == {"remediated"}, states
    assert_exactly_once(faulty.effects, keys)
    assert set(dispatches(product.database, keys).values()) == {1}


def test_killing_the_worker_repeatedly_loses_and_repeats_nothing(faulty: FaultProduct) -> None:
    """``poundcake-worker`` killed with SIGKILL again and again while alerts arrive: every alert is
    remediated, and each remediation's side effect happens once.
    """
    product = faulty.product
    crashes = len(faulty.crashes.crashed)
    before = execution_statuses(product.database)
    sender = Sender(f"{product.api_url}/api/v1/webhook", TOKEN)
    keys = sender.start(WORKER_KILL_ALERTS, rate=4)

    for _ in range(KILLS):
        time.sleep(2.5)
        kill(product, "poundcake-worker")
        time.sleep(0.5)
        start(product, "poundcake-worker")
    sender.wait()

    assert_every_alert_remediated_once(product, faulty, sender, keys)
    after = execution_statuses(product.database)
    assert after["failed"] == before["failed"] and after["abandoned"] == before["abandoned"]
    assert faulty.crashes.crashed[crashes:] == [], "a service crashed"


def test_redis_restarted_empty_loses_nothing(faulty: FaultProduct) -> None:
    """Redis, the task queue's broker, crashes and comes back empty while alerts arrive: the outbox
    in MariaDB is the system of record, so every alert is still remediated, once.
    """
    product = faulty.product
    crashes = len(faulty.crashes.crashed)
    sender = Sender(f"{product.api_url}/api/v1/webhook", TOKEN)
    keys = sender.start(REDIS_ALERTS, rate=5)

    time.sleep(3)
    faulty.redis.kill()
    time.sleep(3)
    faulty.redis.start()
    faulty.redis.wait_ready()
    sender.wait()

    assert_every_alert_remediated_once(product, faulty, sender, keys)
    # No service crashed, and nothing restarted one: the worker reconnected by itself
    # (poundcake.remediation.tasks.broker: kombu's "Unrecoverable error: AttributeError ...
    # 'hostname'" on a Redis lost with messages unacknowledged).
    assert faulty.crashes.crashed[crashes:] == [], "a service crashed"
    assert "Unrecoverable error" not in product.log("poundcake-worker")


def cab_executions(faulty: FaultProduct) -> list[dict[str, Any]]:
    """The slow CAB's workflow executions and their steps."""
    product = faulty.product
    response = product.engine_api(
        "GET", "/executions", params={"action": "poundcake_cabs.fault_slow", "limit": 100}
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = []
    for workflow in response.json():
        found.append(workflow)
        for child in workflow.get("children", []):
            step = product.engine_api("GET", f"/executions/{child}")
            assert step.status_code == 200, step.text
            found.append(step.json())
    return found


def test_a_runner_killed_mid_step_abandons_its_executions(faulty: FaultProduct) -> None:
    """An action runner killed with SIGKILL in the middle of a CAB's step: the engine ends the
    step's execution (and its workflow) ``abandoned`` within 60 s, the alert's remediation ends
    ``failed`` instead of hanging, and the next alert is remediated by a fresh runner.

    The engine-level case (one execution, its lease and status log) is
    ``tests/integration/engine/test_engine_process_faults.py``; this one follows it through
    PoundCake.
    """
    product = faulty.product
    crashes = len(faulty.crashes.crashed)
    sender = Sender(f"{product.api_url}/api/v1/webhook", TOKEN)
    [key] = sender.start(1, rate=1, name=SLOW_ALERT_NAME)
    sender.wait()
    eventually(lambda: side_effects(faulty.effects)[key], "the slow step to start", timeout=120)

    kill(product, "st2actionrunner")

    def ended() -> list[dict[str, Any]] | None:
        found = cab_executions(faulty)
        statuses = {execution["status"] for execution in found}
        return found if found and statuses <= TERMINAL_EXECUTIONS else None

    try:
        executions = eventually(ended, "the killed runner's executions to end", ABANDON_WITHIN)
    finally:
        start(product, "st2actionrunner")
    statuses = sorted(execution["status"] for execution in executions)
    assert "abandoned" in statuses and "running" not in statuses, statuses
    assert wait_settled(product.database, [key], timeout=120) == {key: "failed"}

    keys = sender.start(3, rate=2)
    sender.wait()
    states = wait_settled(product.database, keys, timeout=180)
    assert set(states.values()) == {"remediated"}, states
    assert_exactly_once(faulty.effects, keys)
    assert side_effects(faulty.effects)[key] == 1, "the abandoned step was run again"
    assert faulty.crashes.crashed[crashes:] == [], "a service crashed"


def workflows_in_flight(database: str) -> int:
    """How many of the load CAB's workflow executions have not ended."""
    rows = query(
        database,
        "SELECT COUNT(*) FROM execution_db WHERE action = %s AND status IN "
        "('requested', 'scheduled', 'running')",
        LOAD_WORKFLOW,
    )
    return int(rows[0][0])


def service_log(product: Product, name: str) -> str:
    """The service's log, from its first start (the engine's directory) and restarts."""
    first = product.engine.directory / f"{name}.log"
    return (first.read_text(errors="replace") if first.exists() else "") + product.log(name)


def drained(product: Product, name: str, code: int | None) -> bool:
    """Exited by itself: 0, or (uvicorn) the SIGTERM re-raised after a finished shutdown."""
    if code == 0:
        return True
    return (
        code == -signal.SIGTERM
        and name in HTTP_SERVICES
        and UVICORN_DONE in service_log(product, name)
    )


def test_sigterm_to_every_service_drains_and_loses_nothing(faulty: FaultProduct) -> None:
    """SIGTERM to every service at once while alerts arrive: each drains and exits within 30 s, and
    once they are started again every alert is remediated, no step ran twice and nothing failed.

    A CAB workflow still waiting for a step when its action runner's grace period ends is released
    (back to ``scheduled``), not abandoned; after the restart a runner resumes it from the steps it
    already requested.
    """
    product = faulty.product
    crashes = len(faulty.crashes.crashed)
    before = execution_statuses(product.database)
    workflows_before = execution_statuses(product.database, LOAD_WORKFLOW)
    sender = Sender(f"{product.api_url}/api/v1/webhook", TOKEN)
    keys = sender.start(SIGTERM_ALERTS, rate=4)
    # Stop everything while CAB workflows are in flight (the case that used to end abandoned).
    eventually(
        lambda: workflows_in_flight(product.database), "a CAB workflow in flight", timeout=120
    )

    services = running(product)
    stopping: dict[str, subprocess.Popen[bytes]] = {}
    for name in services:
        stopping[name] = process(product, name)
        stopping[name].send_signal(signal.SIGTERM)
    deadline = time.monotonic() + DRAIN_SECONDS
    codes: dict[str, int | None] = {}
    for name, stopped in stopping.items():
        try:
            codes[name] = stopped.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            codes[name] = None
            os.killpg(stopped.pid, signal.SIGKILL)
        forget(product, name)
    undrained = {name: code for name, code in codes.items() if not drained(product, name, code)}
    assert not undrained, {name: service_log(product, name)[-2000:] for name in undrained}

    for name in services:
        start(product, name)
    wait_for_health(f"{product.api_url}/health")
    sender.wait()

    assert_every_alert_remediated_once(product, faulty, sender, keys)
    after = execution_statuses(product.database)
    workflows = execution_statuses(product.database, LOAD_WORKFLOW) - workflows_before
    assert workflows == Counter(succeeded=len(keys)), workflows
    for status in ("failed", "timeout", "abandoned", "canceled"):
        assert after[status] == before[status], (status, before, after)
    assert not set(after) - TERMINAL_EXECUTIONS, after
    assert faulty.crashes.crashed[crashes:] == [], "a service crashed"
