"""Two ``st2sensorcontainer`` processes against one MariaDB database: each sensor runs once, and
when one container is killed (SIGKILL) its sensors move to the other once the leases expire."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.support.commands import BIN, command_environment
from tests.integration.support.sensor_stack import (
    EngineDatabase,
    process_alive,
    sensor_conf,
    sensor_pids,
)
from tests.integration.support.st2cli import RunningEngine, eventually, running_engine

SERVICES = ("st2api", "st2auth", "st2rulesengine")
RUNNING_SENSORS = ("CountingPollingSensor", "DatastoreSensor", "PassiveSensor", "WatchSensor")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("sensor-leases")
    with running_engine(directory, None, SERVICES, sensor_conf()) as running:
        yield running


def start_container(engine: RunningEngine, name: str) -> subprocess.Popen[bytes]:
    log = (engine.directory / f"{name}.log").open("ab")
    process = subprocess.Popen(
        [str(BIN / "st2sensorcontainer"), "--config-file", str(engine.config_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=command_environment(engine.directory),
        start_new_session=True,
    )
    engine.processes[name] = process
    return process


def children_of(pid: int) -> set[int]:
    """PIDs of the sensor wrappers whose parent is ``pid``."""
    found = set()
    for sensor in RUNNING_SENSORS:
        for child in sensor_pids(sensor):
            stat = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == pid:
                found.add(child)
    return found


def one_each() -> bool:
    return all(len(sensor_pids(sensor)) == 1 for sensor in RUNNING_SENSORS)


def test_each_sensor_runs_once_and_moves_when_its_container_is_killed(
    engine: RunningEngine, tmp_path: Path
) -> None:
    database = EngineDatabase(engine.config_path)
    first = start_container(engine, "container-a")
    eventually(one_each, "every sensor running in the first container")
    second = start_container(engine, "container-b")
    try:
        # For ten seconds, with both containers up, every sensor has exactly one process.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            counts = {sensor: len(sensor_pids(sensor)) for sensor in RUNNING_SENSORS}
            assert set(counts.values()) == {1}, counts
            time.sleep(0.3)
        held_by_first = children_of(first.pid)
        assert len(held_by_first) == len(RUNNING_SENSORS)
        assert not children_of(second.pid)

        events_before = len(database.instances("sensor_tests.event"))
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        # Its sensors die with it (SIGTERM from the kernel when their parent goes).
        eventually(
            lambda: not [pid for pid in held_by_first if process_alive(pid)],
            "the killed container's sensors to stop",
            timeout=20,
        )
        # After the lease (4 s) expires, the other container runs every sensor, once.
        eventually(
            lambda: len(children_of(second.pid)) == len(RUNNING_SENSORS) and one_each(),
            "the second container to take the sensors over",
            timeout=30,
        )
        lease = database.wait_for_status("sensor_tests.PassiveSensor", "running")
        assert lease.holder is not None and f":{second.pid}:" in lease.holder
        eventually(
            lambda: len(database.instances("sensor_tests.event")) > events_before + 5,
            "events from the sensor in its new container",
        )
    finally:
        second.terminate()
        second.wait(timeout=30)
        database.close()
    assert not children_of(second.pid)
    assert "Sensor sensor_tests.PassiveSensor stopped" in engine.log("container-b")
