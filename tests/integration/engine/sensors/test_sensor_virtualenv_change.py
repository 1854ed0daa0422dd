"""A sensor that failed for a library its pack lacked starts as soon as its pack's virtualenv
changes, rather than after the rest of its back-off: the path of a user who sees
``examples.EchoFlaskSensor`` fail on ``flask`` and runs ``st2 run packs.setup_virtualenv``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.integration.support.sensor_stack import EngineDatabase
from tests.integration.support.st2cli import REPOSITORY, eventually, running_engine

PACKS = REPOSITORY / "tests" / "fixtures" / "packs" / "sensor_requirements"
SENSOR = "requirement_sensor_tests.NeedsLibrarySensor"
CONF = (
    f"[content]\npacks_base_paths = {PACKS}\n\n"
    "[rulesengine]\npoll_interval = 0.5\n\n"
    # A back-off far longer than the test waits: only the virtualenv's change can start it.
    "[sensorcontainer]\npoll_interval = 0.5\nrespawn_delay = 120\nmax_respawn_delay = 300\n"
)


def make_virtualenv(path: Path) -> None:
    """A real virtualenv holding the library the sensor imports."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    site = next(path.glob("lib/python3*/site-packages"))
    (site / "sensor_requirement_library.py").write_text('GREETING = "from the virtualenv"\n')


def test_a_sensor_failing_for_a_missing_library_starts_when_its_virtualenv_appears(
    tmp_path: Path,
) -> None:
    with running_engine(tmp_path, None, ("st2sensorcontainer",), CONF) as engine:
        database = EngineDatabase(engine.config_path)
        try:
            failed = database.wait_for_status(SENSOR, "failed")
            assert "No module named 'sensor_requirement_library'" in (failed.last_error or "")
            spawned = failed.spawn_count
            time.sleep(3)
            lease = database.lease(SENSOR)
            assert lease is not None and lease.spawn_count == spawned  # backing off, not looping

            make_virtualenv(tmp_path / "data" / "virtualenvs" / "requirement_sensor_tests")
            started = time.monotonic()
            database.wait_for_status(SENSOR, "running", timeout=30)
            assert time.monotonic() - started < 30
            payloads = eventually(
                lambda: database.payloads("requirement_sensor_tests.started"),
                "the sensor's dispatch",
            )
            assert payloads == [{"greeting": "from the virtualenv"}]
            assert "The virtualenv of pack requirement_sensor_tests changed" in engine.log(
                "st2sensorcontainer"
            )
        finally:
            database.close()
