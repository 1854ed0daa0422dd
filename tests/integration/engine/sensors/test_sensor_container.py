"""``st2sensorcontainer`` running the ``sensor_tests`` pack (tests/fixtures/packs/sensors) beside
the real st2api, st2auth, st2scheduler, st2actionrunner and st2rulesengine processes on MariaDB
and RabbitMQ: polling and passive sensors, their triggers into rules, the datastore, trigger
watching, a SIGKILLed sensor and a sensor that fails at import."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.support.sensor_stack import (
    SENSOR_SERVICES,
    EngineDatabase,
    process_alive,
    sensor_conf,
    sensor_pids,
)
from tests.integration.support.st2cli import (
    RunningEngine,
    St2,
    eventually,
    listing,
    logged_in,
    ok,
    running_engine,
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("sensors")
    with running_engine(directory, None, SENSOR_SERVICES, sensor_conf()) as running:
        yield running
        container = running.processes["st2sensorcontainer"]
        children = sensor_pids("PassiveSensor") + sensor_pids("DatastoreSensor")
        container.terminate()
        container.wait(timeout=30)
        # Stopping the container stops its sensors: none is left behind.
        assert not [pid for pid in children if process_alive(pid)]
        assert "Sensor sensor_tests.PassiveSensor stopped" in running.log("st2sensorcontainer")


@pytest.fixture(scope="module")
def database(engine: RunningEngine) -> Iterator[EngineDatabase]:
    found = EngineDatabase(engine.config_path)
    yield found
    found.close()


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    return logged_in(engine, tmp_path / "home")


def test_a_passive_sensor_dispatches_into_a_rule_whose_action_runs(
    engine: RunningEngine, database: EngineDatabase, st2: St2
) -> None:
    payloads = eventually(
        lambda: [p for p in database.payloads("sensor_tests.event") if p.get("n") == 5],
        "the passive sensor's fifth event",
    )
    # The pack config (with its schema's default) and the pack's lib/ reached the sensor.
    assert payloads[0] == {"n": 5, "source": "passive", "greeting": "hello from the pack config"}
    # The payload its schema refuses was logged and never stored.
    assert all(isinstance(p.get("n"), int) for p in database.payloads("sensor_tests.event"))
    assert "Trigger payload validation failed" in engine.log("st2sensorcontainer")

    def echoed() -> list[dict[str, object]]:
        found = listing(st2("execution", "list", "--action", "core.echo", "-j"))
        return [e for e in found if e["status"] == "succeeded"]

    execution = eventually(echoed, "the rule's core.echo execution to succeed")[0]
    shown = ok(st2("execution", "get", execution["id"], "-j"))
    assert shown["result"]["stdout"] == "event 5 from passive"


def test_a_polling_sensor_polls_at_its_interval_and_keeps_state_in_the_datastore(
    database: EngineDatabase, st2: St2
) -> None:
    polls = eventually(
        lambda: (found := database.payloads("sensor_tests.poll")) and len(found) >= 2 and found,
        "two polls",
        timeout=30,
    )
    assert [p["count"] for p in polls[:2]] == [1, 2]
    assert polls[0]["interval"] == 4
    instances = database.instances("sensor_tests.poll")
    gap = (instances[1].occurrence_time - instances[0].occurrence_time).total_seconds()
    assert 3.5 <= gap <= 8
    key = ok(st2("key", "get", "sensor_tests.CountingPollingSensor:polls", "-j"))
    assert int(key["value"]) >= 2


def test_a_sensor_uses_every_datastore_method(database: EngineDatabase) -> None:
    report = eventually(
        lambda: database.payloads("sensor_tests.datastore_report"), "the datastore report"
    )[0]
    assert report == {
        "set_local": True,
        "get_local": "blue",
        "get_global_of_local": "blue",
        "list_local": [
            "sensor_tests.DatastoreSensor:color",
            "sensor_tests.DatastoreSensor:shape",
        ],
        "list_prefix": ["sensor_tests.DatastoreSensor:shape"],
        "get_global": "everywhere",
        "secret_encrypted": True,
        "secret_decrypted": "s3cr3t",
        "ttl_before": "soon gone",
        "ttl_after": None,
        "user_scope": "user value",
        "delete": True,
        "get_deleted": None,
        "delete_missing": False,
        "user": "sensor_service",
        "config": {"greeting": "hello from the pack config"},
    }


def test_rules_add_and_remove_the_triggers_a_sensor_watches(
    database: EngineDatabase, st2: St2
) -> None:
    added = eventually(
        lambda: [
            p for p in database.payloads_of_type("sensor_tests.watched") if p["event"] == "added"
        ],
        "add_trigger for the rule's trigger",
    )
    assert added[0]["name"] == "first"
    deleted = st2("rule", "delete", "sensor_tests.on_watched")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    removed = eventually(
        lambda: (found := st2("key", "get", "removed", "-j")).returncode == 0 and found.json(),
        "remove_trigger",
    )
    assert removed["value"] == "first"


def test_a_sigkilled_sensor_is_restarted_and_keeps_dispatching(
    engine: RunningEngine, database: EngineDatabase, st2: St2
) -> None:
    rule = {
        "name": "on_sensor_exit",
        "pack": "sensor_tests",
        "enabled": True,
        "trigger": {"type": "core.st2.sensor.process_exit"},
        "criteria": {"trigger.id": {"type": "equals", "pattern": "PassiveSensor"}},
        "action": {"ref": "core.noop"},
    }
    path = engine.directory / "on_sensor_exit.json"
    path.write_text(json.dumps(rule))
    ok(st2("rule", "create", str(path), "-j"))
    lease = database.wait_for_status("sensor_tests.PassiveSensor", "running")
    spawns_before = len(database.instances("core.st2.sensor.process_spawn"))
    os.kill(lease.pid, signal.SIGKILL)
    killed_at = time.time()
    exits = eventually(
        lambda: [
            p
            for p in database.payloads("core.st2.sensor.process_exit")
            if p["id"] == "PassiveSensor" and p["exit_code"] == -signal.SIGKILL
        ],
        "the process_exit trigger",
    )
    assert exits[0]["timestamp"] >= int(killed_at) - 1
    restarted = database.wait_for_status(
        "sensor_tests.PassiveSensor", "running", unless_pid=lease.pid
    )
    assert len(database.instances("core.st2.sensor.process_spawn")) > spawns_before
    before = len(database.instances("sensor_tests.event"))
    eventually(
        lambda: len(database.instances("sensor_tests.event")) >= before + 5,
        "new events from the restarted sensor",
    )
    assert restarted.spawn_count >= 2
    eventually(
        lambda: listing(
            st2("rule-enforcement", "list", "--rule", "sensor_tests.on_sensor_exit", "-j")
        ),
        "the rule on process_exit to fire",
    )


def broken_exits(database: EngineDatabase, since: int) -> list[dict[str, Any]]:
    """The ``process_exit`` payloads of BrokenSensor after the first ``since`` exits."""
    exits = database.payloads("core.st2.sensor.process_exit")[since:]
    return [payload for payload in exits if payload["id"] == "BrokenSensor"]


def test_a_sensor_that_always_fails_is_given_up_after_two_respawns(
    engine: RunningEngine, database: EngineDatabase, st2: St2
) -> None:
    ref = "sensor_tests.BrokenSensor"
    exits_before = len(database.payloads("core.st2.sensor.process_exit"))
    enabled = ok(st2("sensor", "enable", ref, "-j"))
    assert enabled["enabled"] is True
    try:
        first = database.wait_for_status(ref, "failed")
        assert "No module named 'a_module_that_does_not_exist'" in (first.last_error or "")
        given_up = database.wait_for_status(ref, "given_up")
        # StackStorm's container: the first start and two respawns, then no more.
        assert given_up.spawn_count == 3
        shown = ok(st2("sensor", "get", ref, "-j"))
        assert shown["status"] == "given_up"
        assert shown.get("pid") is None
        assert (
            "ModuleNotFoundError: No module named 'a_module_that_does_not_exist'"
            in shown["last_error"]
        )
        # The last exit's instance is stored just after the status.
        exits = eventually(
            lambda: len(found := broken_exits(database, exits_before)) == 3 and found,
            "the third process_exit of BrokenSensor",
        )
        assert [payload["given_up"] for payload in exits] == [False, False, True]
        assert "Sensor sensor_tests.BrokenSensor failed 3 times in a row (2 respawns); giving" in (
            engine.log("st2sensorcontainer")
        )
        # Two more lease renewals later (rounds of the container) it is still down.
        renewed = given_up.expires_at
        for _ in range(2):
            renewed = eventually(
                lambda since=renewed: (
                    (lease := database.lease(ref))
                    and lease.expires_at is not None
                    and lease.expires_at > since
                    and lease.expires_at
                ),
                "the container's next round",
            )
        after = database.lease(ref)
        assert after is not None and after.spawn_count == 3 and after.status == "given_up"
        assert not sensor_pids("BrokenSensor")
    finally:
        ok(st2("sensor", "disable", ref, "-j"))
    eventually(lambda: not sensor_pids("BrokenSensor"), "the disabled sensor stopped")
    shown = ok(st2("sensor", "get", ref, "-j"))
    assert shown["enabled"] is False


def test_sensors_run_monkey_patched_by_eventlet_as_in_stackstorm(
    engine: RunningEngine, database: EngineDatabase, st2: St2
) -> None:
    ref = "sensor_tests.GreenSensor"
    ok(st2("sensor", "enable", ref, "-j"))
    try:
        # run() blocks in accept(); only a patched socket lets the green thread dispatch.
        ticks = eventually(
            lambda: [p for p in database.payloads("sensor_tests.green") if p["n"] >= 3],
            "three ticks from the green thread",
        )
        assert ticks[0]["socket_patched"] is True and ticks[0]["thread_patched"] is True
        running = database.wait_for_status(ref, "running")
    finally:
        ok(st2("sensor", "disable", ref, "-j"))
    # SIGTERM reaches the patched process: cleanup() runs and it exits 0.
    eventually(lambda: not sensor_pids("GreenSensor"), "the disabled sensor stopped")
    exits = eventually(
        lambda: [
            p for p in database.payloads("core.st2.sensor.process_exit") if p["id"] == "GreenSensor"
        ],
        "the GreenSensor's process_exit",
    )
    assert exits == [
        {"id": "GreenSensor", "timestamp": exits[0]["timestamp"], "exit_code": 0, "given_up": False}
    ]
    assert running.pid is not None
    assert f"Sensor {ref} stopped (exit code 0)" in engine.log("st2sensorcontainer")


def test_st2_sensor_list_and_get_show_each_sensor_and_its_status(st2: St2) -> None:
    listed = listing(st2("sensor", "list", "--pack", "sensor_tests", "-j"))
    assert [sensor["ref"] for sensor in listed] == [
        "sensor_tests.BrokenSensor",
        "sensor_tests.CountingPollingSensor",
        "sensor_tests.DatastoreSensor",
        "sensor_tests.GreenSensor",
        "sensor_tests.PassiveSensor",
        "sensor_tests.WatchSensor",
    ]
    by_trigger = httpx.get(
        f"{st2.engine.api_url}/sensortypes",
        params={"trigger": "sensor_tests.poll"},
        headers={"X-Auth-Token": st2.env["ST2_AUTH_TOKEN"]},
        timeout=30,
    ).json()
    assert [sensor["ref"] for sensor in by_trigger] == ["sensor_tests.CountingPollingSensor"]
    shown = ok(st2("sensor", "get", "sensor_tests.CountingPollingSensor", "-j"))
    assert shown["poll_interval"] == 4
    assert shown["trigger_types"] == ["sensor_tests.poll"]
    assert shown["status"] == "running"
    assert shown["node"].startswith("sensornode1@")
    table = st2("sensor", "get", "sensor_tests.CountingPollingSensor")
    assert "running" in table.stdout and "last_error" in table.stdout


def test_st2_sensor_disable_stops_a_sensor_and_enable_starts_it_again(
    database: EngineDatabase, st2: St2
) -> None:
    running = database.wait_for_status("sensor_tests.PassiveSensor", "running")
    disabled = ok(st2("sensor", "disable", "sensor_tests.PassiveSensor", "-j"))
    assert disabled["enabled"] is False
    eventually(lambda: not sensor_pids("PassiveSensor"), "the disabled sensor's process to end")
    shown = ok(st2("sensor", "get", "sensor_tests.PassiveSensor", "-j"))
    assert shown["status"] == "disabled"
    count = len(database.instances("sensor_tests.event"))
    time.sleep(1.5)
    assert len(database.instances("sensor_tests.event")) == count
    ok(st2("sensor", "enable", "sensor_tests.PassiveSensor", "-j"))
    again = database.wait_for_status(
        "sensor_tests.PassiveSensor", "running", unless_pid=running.pid
    )
    assert again.pid in sensor_pids("PassiveSensor")
    eventually(
        lambda: len(database.instances("sensor_tests.event")) > count + 3,
        "events from the enabled sensor",
    )


def test_putting_a_sensor_type_refuses_to_change_anything_but_enabled(st2: St2) -> None:
    document = ok(st2("sensor", "get", "sensor_tests.WatchSensor", "-j"))
    document["poll_interval"] = 30
    answer = httpx.put(
        f"{st2.engine.api_url}/sensortypes/{document['id']}",
        json=document,
        headers={"X-Auth-Token": st2.env["ST2_AUTH_TOKEN"]},
        timeout=30,
    )
    assert answer.status_code == 400
    assert "poll_interval" in answer.json()["faultstring"]
