"""Helpers for the sensor container tests: the ``sensor_tests`` pack, the engine's database."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from poundcake.config import load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.engine.sensors.models import SensorLeaseDB
from poundcake.engine.triggers.models import TriggerDB, TriggerInstanceDB
from tests.integration.support.st2cli import eventually
from tests.paths import REPOSITORY

SENSOR_PACKS = REPOSITORY / "tests" / "fixtures" / "packs" / "sensors"
SENSOR_SERVICES = (
    "st2api",
    "st2auth",
    "st2scheduler",
    "st2actionrunner",
    "st2rulesengine",
    "st2sensorcontainer",
)


def sensor_conf(extra: str = "") -> str:
    """st2.conf sections for the sensor tests: our pack (whose sensors share its lib/, which
    StackStorm puts on their path only with ``enable_common_libs``), quick rounds and a short
    back-off."""
    return (
        f"[content]\npacks_base_paths = {SENSOR_PACKS}\n\n"
        "[packs]\nenable_common_libs = True\n\n"
        "[rulesengine]\npoll_interval = 0.5\n\n"
        "[sensorcontainer]\npoll_interval = 0.5\nrespawn_delay = 1\nlease_seconds = 4\n"
        f"stop_timeout = 3\n{extra}"
    )


class EngineDatabase:
    """Reads the engine's tables the way the tests check them."""

    def __init__(self, config_path: Path) -> None:
        self.db_engine = make_st2_engine(load_st2_config(config_path), pool_size=2)

    def close(self) -> None:
        self.db_engine.dispose()

    def instances(self, trigger: str) -> list[TriggerInstanceDB]:
        with self.db_engine.connect() as connection:
            rows = connection.execute(
                sa.select(TriggerInstanceDB.__table__)
                .where(TriggerInstanceDB.trigger == trigger)
                .order_by(TriggerInstanceDB.occurrence_time)
            ).all()
        return [TriggerInstanceDB(**row._mapping) for row in rows]

    def payloads(self, trigger: str) -> list[dict[str, Any]]:
        return [dict(instance.payload or {}) for instance in self.instances(trigger)]

    def payloads_of_type(self, trigger_type: str) -> list[dict[str, Any]]:
        """Payloads of the instances of every trigger of ``trigger_type``."""
        with self.db_engine.connect() as connection:
            rows = connection.execute(
                sa.select(TriggerInstanceDB.payload)
                .join(TriggerDB, TriggerDB.ref == TriggerInstanceDB.trigger)
                .where(TriggerDB.type == trigger_type)
                .order_by(TriggerInstanceDB.occurrence_time)
            ).all()
        return [dict(row.payload or {}) for row in rows]

    def lease(self, ref: str) -> SensorLeaseDB | None:
        with self.db_engine.connect() as connection:
            row = connection.execute(
                sa.select(SensorLeaseDB.__table__).where(SensorLeaseDB.sensor_ref == ref)
            ).first()
        return SensorLeaseDB(**row._mapping) if row is not None else None

    def wait_for_status(
        self, ref: str, status: str, unless_pid: int | None = None, timeout: float = 60
    ) -> SensorLeaseDB:
        """The lease row once it shows ``status`` (and a pid other than ``unless_pid``)."""

        def check() -> SensorLeaseDB | None:
            found = self.lease(ref)
            if found is None or found.status != status:
                return None
            return found if unless_pid is None or found.pid != unless_pid else None

        found: SensorLeaseDB = eventually(check, f"{ref} {status}", timeout=timeout)
        return found

    def execute(self, statement: Any) -> None:
        with self.db_engine.begin() as connection:
            connection.execute(statement)


def process_alive(pid: int) -> bool:
    """Tell whether ``pid`` is a live (not zombie) process."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def sensor_pids(ref_class: str) -> list[int]:
    """PIDs of live sensor wrapper processes running ``--class-name=<ref_class>``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"poundcake.engine.sensors.green" in command
            and f"--class-name={ref_class}".encode() in command
            and process_alive(int(entry.name))
        ):
            found.append(int(entry.name))
    return found


@contextmanager
def killed_on_exit(pids: list[int]) -> Iterator[None]:
    """Make sure no process in ``pids`` outlives the block."""
    try:
        yield
    finally:
        for pid in pids:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
