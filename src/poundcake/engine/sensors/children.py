"""One sensor's child process: starting it, hearing its stages, stopping it.

The child runs :mod:`poundcake.engine.sensors.green` (eventlet's monkey-patching, then the
wrapper) under the pack's interpreter with the ``PYTHONPATH`` of
:mod:`poundcake.engine.sensors.environment`, in a process group of its own, and reports its
stages on a pipe the container reads from a thread. Its stdout and stderr are the container's,
so what a sensor logs lands in the container's log.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from poundcake.config import St2Config
from poundcake.engine.packs.virtualenvs import PackPythonEnvironment
from poundcake.engine.sensors.environment import sensor_environment, sensor_python_path
from poundcake.engine.sensors.service import SensorToRun

logger = logging.getLogger(__name__)

WRAPPER_MODULE = "poundcake.engine.sensors.green"


@dataclass
class SensorChild:
    """A running sensor process and what it has reported."""

    sensor: SensorToRun
    process: subprocess.Popen[bytes]
    command: str
    started_at: float
    stage: str = "starting"
    error: str | None = None
    recorded_running: bool = False
    _reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        return self.process.poll()

    def wait_reports(self, timeout: float = 1.0) -> None:
        """Give the reader a moment to take the last lines the child wrote."""
        if self._reader is not None:
            self._reader.join(timeout)

    def stop(self, grace: float) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; return the exit code."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "Sensor %s (PID %s) did not stop in %.0f s; killing it",
                    self.sensor.ref,
                    self.pid,
                    grace,
                )
                self._signal(signal.SIGKILL)
                self.process.wait()
        self.wait_reports()
        return self.process.returncode

    def _signal(self, signum: signal.Signals) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            return


def _read_reports(child: SensorChild, descriptor: int) -> None:
    with os.fdopen(descriptor, "r", encoding="utf-8", errors="replace") as source:
        for line in source:
            try:
                report = json.loads(line)
            except ValueError:
                continue
            if isinstance(report, dict) and isinstance(report.get("stage"), str):
                child.stage = report["stage"]
                if report.get("error"):
                    child.error = str(report["error"])


def child_environment(
    config: St2Config, sensor: SensorToRun, python: PackPythonEnvironment
) -> dict[str, str]:
    """The sensor process's environment: ours, with its ``PYTHONPATH`` and our st2.conf."""
    env = dict(os.environ)
    env["PYTHONPATH"] = sensor_python_path(python, sensor_file=sensor.file_path)
    env["PATH"] = python.path_variable(env.get("PATH", ""))
    env["PYTHONUNBUFFERED"] = "1"
    if not config.is_embedded:
        # The child runs in the sensor's directory: a relative --config-file must still hold.
        env["ST2_CONFIG_PATH"] = str(Path(config.source).resolve())
    env["ST2_SENSOR_PACK_NAME"] = sensor.pack
    return env


def spawn_child(config: St2Config, sensor: SensorToRun) -> SensorChild:
    """Start ``sensor``'s process; OSError if the interpreter cannot be started, VirtualenvError
    if the pack's virtualenv is incomplete."""
    python = sensor_environment(config, pack=sensor.pack, pack_path=sensor.pack_path)
    read_end, write_end = os.pipe()
    argv = [
        str(python.python),
        "-P",  # the sensor's directory must not shadow modules the wrapper imports
        "-m",
        WRAPPER_MODULE,
        f"--pack={sensor.pack}",
        f"--file-path={sensor.file_path}",
        f"--class-name={sensor.class_name}",
        f"--trigger-type-refs={','.join(sensor.trigger_types)}",
        f"--status-fd={write_end}",
        f"--parent-pid={os.getpid()}",
    ]
    if sensor.poll_interval:
        argv.append(f"--poll-interval={sensor.poll_interval}")
    cwd = sensor.file_path.parent if sensor.file_path.parent.is_dir() else Path.cwd()
    try:
        process = subprocess.Popen(  # noqa: S603 - the pack's interpreter, our own wrapper
            argv,
            env=child_environment(config, sensor, python),
            cwd=cwd,
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    child = SensorChild(
        sensor=sensor, process=process, command=" ".join(argv), started_at=time.monotonic()
    )
    reader = threading.Thread(
        target=_read_reports, args=(child, read_end), name=f"sensor-{sensor.ref}", daemon=True
    )
    child._reader = reader
    reader.start()
    return child
