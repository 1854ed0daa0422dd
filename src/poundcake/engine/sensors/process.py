"""The ``st2sensorcontainer`` process: run every enabled sensor this container holds.

Each round (``[sensorcontainer] poll_interval``) it reads the enabled sensors, keeps those its
partitioner offers, takes or renews their leases, then makes the running processes match what
it holds: a sensor disabled, changed or taken over is stopped; a held sensor that is not running
is started, unless it is waiting out its respawn delay or was given up.

A sensor process that exits non-zero (a crash, SIGKILL, an error at import or setup) is respawned
as StackStorm's container does: after ``respawn_delay`` times the number of respawns in a row,
at most ``MAX_RESPAWN_COUNTS`` times; one that ran ``STABLE_AFTER`` seconds counts as healthy
again. After that it is given up (status ``given_up``, an error in the log, ``given_up: true`` in
its ``process_exit`` payload) and stays down until the container restarts, the sensor is changed
or disabled and enabled again, or its pack's virtualenv changes (``st2 run
packs.setup_virtualenv`` after a failure for a missing requirement, which also starts a sensor
waiting out its delay at once). A sensor that returns from ``run()`` (exit 0) is not restarted,
as in StackStorm. Every start and exit stores a ``core.st2.sensor.process_spawn`` or
``process_exit`` trigger instance, and the sensor's status and last error are written where
``st2 sensor get`` shows them.

On SIGTERM every sensor is stopped (SIGTERM, then SIGKILL after ``stop_timeout``) and the leases
are released. A container that cannot renew its leases stops its sensors before they expire,
so another container never runs them at the same time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from poundcake.config_sections import SensorContainerSection
from poundcake.db.retry import in_transaction
from poundcake.db.types import utcnow
from poundcake.engine.packs.virtualenvs import VirtualenvError, virtualenvs_dir
from poundcake.engine.runtime import EngineRuntime
from poundcake.engine.sensors.children import SensorChild, spawn_child
from poundcake.engine.sensors.partitioners import Partitioner, make_partitioner
from poundcake.engine.sensors.service import (
    EXIT_TRIGGER,
    SPAWN_TRIGGER,
    SensorStatus,
    SensorToRun,
    claim_sensors,
    enabled_sensors,
    process_event,
    record_status,
    release_sensors,
)
from poundcake.engine.triggers.instances import announce_trigger_instances

logger = logging.getLogger(__name__)

# StackStorm's SENSOR_SUCCESSFUL_START_THRESHOLD and SENSOR_MAX_RESPAWN_COUNTS (constants there).
STABLE_AFTER = 10.0
MAX_RESPAWN_COUNTS = 2
SETUP_STAGES = frozenset({"starting", "import", "setup"})


@dataclass
class Backoff:
    """Failures in a row of one sensor and when it may start again."""

    failures: int = 0
    not_before: float = 0.0
    finished: bool = False
    failed_early: bool = False
    virtualenv: int | None = None
    # The sensor's definition when it was given up: a changed one is tried afresh.
    given_up: tuple[Any, ...] | None = None

    @property
    def exhausted(self) -> bool:
        """Whether the last failure used up the respawns StackStorm allows."""
        return self.failures > MAX_RESPAWN_COUNTS


class SensorContainer:
    """One sensor container; several may run against the same database."""

    def __init__(
        self,
        runtime: EngineRuntime,
        settings: SensorContainerSection | None = None,
        *,
        sensor_ref: str | None = None,
        partitioner: Partitioner | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = settings or runtime.config.sensorcontainer
        self.single_sensor_mode = self.settings.single_sensor_mode
        self.partitioner = partitioner or make_partitioner(self.settings, sensor_ref)
        self.holder = (
            f"{self.settings.sensor_node_name}@{socket.gethostname()}:{os.getpid()}:"
            f"{uuid.uuid4().hex[:8]}"
        )
        self.children: dict[str, SensorChild] = {}
        self.backoff: dict[str, Backoff] = {}
        self.held: set[str] = set()
        self._renewed_at = time.monotonic()
        self.exit_code = 0
        self._stop: threading.Event | None = None

    # --- leases ---------------------------------------------------------------------------

    def _wanted(self) -> dict[str, SensorToRun]:
        def read(session: Any) -> list[SensorToRun]:
            return self.partitioner.select(session, enabled_sensors(session=session))

        return {sensor.ref: sensor for sensor in in_transaction(self.runtime.sessions, read)}

    def claim(self, wanted: dict[str, SensorToRun]) -> set[str]:
        """Take or renew the leases of ``wanted``; return the refs held."""
        lease = self.settings.lease_seconds
        held = in_transaction(
            self.runtime.sessions,
            lambda session: claim_sensors(
                session=session, holder=self.holder, refs=wanted, now=utcnow(), lease_seconds=lease
            ),
        )
        self._renewed_at = time.monotonic()
        return held

    # --- events and status ------------------------------------------------------------------

    def _event(self, trigger_ref: str, payload: dict[str, Any]) -> None:
        instance = in_transaction(
            self.runtime.sessions,
            lambda session: process_event(
                session=session, trigger_ref=trigger_ref, payload=payload
            ),
        )
        announce_trigger_instances(self.runtime.publisher, [instance])

    def _status(self, ref: str, status: SensorStatus, **values: Any) -> None:
        in_transaction(
            self.runtime.sessions,
            lambda session: record_status(
                session=session, ref=ref, status=status, now=utcnow(), **values
            ),
        )

    # --- processes --------------------------------------------------------------------------

    def start(self, sensor: SensorToRun) -> None:
        """Start one sensor's process and record it."""
        try:
            child = spawn_child(self.runtime.config, sensor)
        except (OSError, VirtualenvError) as error:
            message = f"Failed to spawn process for sensor {sensor.ref}: {error}"
            logger.error("%s", message)
            self._failed(sensor, SensorStatus.FAILED, message, None)
            return
        self.children[sensor.ref] = child
        logger.info("Sensor %s started (PID %s)", sensor.ref, child.pid)
        # A sensor retried after failing at import or setup shows "failed" until it runs.
        state = self.backoff.get(sensor.ref)
        status = SensorStatus.FAILED if state and state.failed_early else SensorStatus.STARTING
        self._status(sensor.ref, status, pid=child.pid, spawned=True, keep_error=True)
        self._event(
            SPAWN_TRIGGER,
            {
                "id": sensor.class_name,
                "timestamp": int(time.time()),
                "pid": child.pid,
                "cmd": child.command,
            },
        )

    def stop_child(self, ref: str, *, record: bool = True) -> None:
        """Stop a sensor's process (SIGTERM, then SIGKILL) and record its exit."""
        child = self.children.pop(ref)
        exit_code = child.stop(self.settings.stop_timeout)
        logger.info("Sensor %s stopped (exit code %s)", ref, exit_code)
        self._exit_event(child.sensor, exit_code, given_up=False)
        if record:
            self._status(ref, SensorStatus.STOPPED, exit_code=exit_code, keep_error=True)

    def _virtualenv_stamp(self, pack: str) -> int | None:
        """When the pack's virtualenv directory last changed (setup adds and removes its
        marker file there, and a new one replaces it); None when it has none."""
        try:
            return (virtualenvs_dir(self.runtime.config) / pack).stat().st_mtime_ns
        except OSError:
            return None

    def _exit_event(self, sensor: SensorToRun, exit_code: int | None, *, given_up: bool) -> None:
        """Store StackStorm's ``process_exit`` payload, with whether the sensor was given up."""
        self._event(
            EXIT_TRIGGER,
            {
                "id": sensor.class_name,
                "timestamp": int(time.time()),
                "exit_code": exit_code,
                "given_up": given_up,
            },
        )

    def _failed(
        self, sensor: SensorToRun, status: SensorStatus, error: str, exit_code: int | None
    ) -> bool:
        """Count a failure, then schedule the respawn or give the sensor up; True if given up."""
        state = self.backoff.setdefault(sensor.ref, Backoff())
        state.virtualenv = self._virtualenv_stamp(sensor.pack)
        state.failures += 1
        state.failed_early = status is SensorStatus.FAILED
        summary = error.strip().splitlines()[-1] if error.strip() else error
        if state.exhausted:
            state.given_up = sensor.fingerprint
            logger.error(
                "Sensor %s failed %d times in a row (%d respawns); giving it up until the "
                "container restarts, the sensor changes or its pack's virtualenv changes: %s",
                sensor.ref,
                state.failures,
                MAX_RESPAWN_COUNTS,
                summary,
            )
            self._status(sensor.ref, SensorStatus.GIVEN_UP, error=error, exit_code=exit_code)
            return True
        delay = min(self.settings.respawn_delay * state.failures, self.settings.max_respawn_delay)
        state.not_before = time.monotonic() + delay
        logger.warning(
            "Sensor %s %s (failure %d in a row); respawn %d of %d in %.1f s: %s",
            sensor.ref,
            status.value,
            state.failures,
            state.failures,
            MAX_RESPAWN_COUNTS,
            delay,
            summary,
        )
        self._status(sensor.ref, status, error=error, exit_code=exit_code)
        return False

    def reap(self) -> None:
        """Notice exited sensor processes: record the exit, schedule a respawn or give up."""
        for ref, child in list(self.children.items()):
            exit_code = child.poll()
            if exit_code is None:
                self._note_progress(ref, child)
                continue
            del self.children[ref]
            child.wait_reports()
            logger.info("Process for sensor %s has exited with code %s", ref, exit_code)
            given_up = False
            if exit_code == 0:
                self.backoff.setdefault(ref, Backoff()).finished = True
                self._status(ref, SensorStatus.STOPPED, exit_code=0, keep_error=True)
            else:
                given_up = self._crashed(child, exit_code)
            self._exit_event(child.sensor, exit_code, given_up=given_up)

    def _crashed(self, child: SensorChild, exit_code: int) -> bool:
        """Record a non-zero exit; True if the sensor is given up."""
        if self.single_sensor_mode:
            logger.info(
                "Not respawning %s: single sensor mode; the container exits", child.sensor.ref
            )
            self.exit_code = exit_code if exit_code > 0 else 1
            if self._stop is not None:
                self._stop.set()
        failed_early = child.stage in SETUP_STAGES
        status = SensorStatus.FAILED if failed_early else SensorStatus.BACKOFF
        error = child.error or f"Sensor process exited with code {exit_code}"
        return self._failed(child.sensor, status, error, exit_code)

    def _note_progress(self, ref: str, child: SensorChild) -> None:
        state = self.backoff.setdefault(ref, Backoff())
        if child.stage == "running" and not child.recorded_running:
            child.recorded_running = True
            self._status(ref, SensorStatus.RUNNING, pid=child.pid, keep_error=True)
        if child.stage == "running":
            state.failed_early = False
        if state.failures and time.monotonic() - child.started_at >= STABLE_AFTER:
            state.failures = 0

    def reconcile(self, wanted: dict[str, SensorToRun]) -> None:
        """Stop what is no longer ours or changed; start what is ours and may start."""
        for ref, child in list(self.children.items()):
            sensor = wanted.get(ref)
            if ref not in self.held or sensor is None:
                # Disabled or gone: nobody runs it, so its status is ours to write. Taken over
                # by another container: the status is the new holder's.
                self.stop_child(ref, record=sensor is None or ref in self.held)
            elif sensor.fingerprint != child.sensor.fingerprint:
                logger.info("Sensor %s changed; restarting it", ref)
                self.stop_child(ref)
        for ref in list(self.backoff):
            if ref not in wanted:
                del self.backoff[ref]  # disabled or gone: starts afresh when it comes back
        for ref in sorted(self.held):
            sensor = wanted.get(ref)
            state = self.backoff.setdefault(ref, Backoff())
            if sensor is None or ref in self.children or state.finished:
                continue
            if state.failures and self._try_afresh(sensor, state):
                self.backoff[ref] = Backoff()
            elif state.given_up is not None or time.monotonic() < state.not_before:
                continue
            self.start(sensor)

    def _try_afresh(self, sensor: SensorToRun, state: Backoff) -> bool:
        """Whether a failing sensor starts now with all its respawns: its pack's virtualenv
        changed, or it was given up and has been changed since (as a StackStorm update does)."""
        if state.given_up is not None and state.given_up != sensor.fingerprint:
            logger.info("Sensor %s changed since it was given up; starting it", sensor.ref)
            return True
        if self._virtualenv_stamp(sensor.pack) == state.virtualenv:
            return False
        logger.info("The virtualenv of pack %s changed; starting %s now", sensor.pack, sensor.ref)
        return True

    def round(self) -> None:
        """One round: leases, exits, starts and stops."""
        self.reap()
        wanted = self._wanted()
        self.held = self.claim(wanted)
        self.reconcile(wanted)

    def _lost_leases(self) -> None:
        age = time.monotonic() - self._renewed_at
        if self.children and age > self.settings.lease_seconds * 0.8:
            logger.error(
                "Could not renew sensor leases for %.0f s; stopping every sensor so that "
                "another container may run them",
                age,
            )
            self.held = set()
            for ref in list(self.children):
                child = self.children.pop(ref)
                child.stop(self.settings.stop_timeout)

    def shutdown(self) -> None:
        """Stop every sensor and give up the leases."""
        for ref in list(self.children):
            try:
                self.stop_child(ref)
            except sa.exc.SQLAlchemyError:
                logger.exception("Could not record the stop of sensor %s", ref)
        try:
            in_transaction(
                self.runtime.sessions,
                lambda session: release_sensors(session=session, holder=self.holder),
            )
        except sa.exc.SQLAlchemyError:
            logger.exception("Could not release the sensor leases; they expire on their own")

    def run(self, stop: threading.Event) -> None:
        """Run rounds until ``stop`` is set, then stop the sensors."""
        self._stop = stop
        logger.info("Sensor container %s starting", self.holder)
        try:
            while not stop.is_set():
                try:
                    self.round()
                except sa.exc.SQLAlchemyError:
                    logger.exception("A sensor container round failed; the next one tries again")
                    self._lost_leases()
                stop.wait(self.settings.poll_interval)
        finally:
            self.shutdown()
        logger.info("Sensor container stopped")
