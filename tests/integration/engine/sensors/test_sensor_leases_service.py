"""Sensor leases and the kvstore partitioner against MariaDB: compare-and-set claims, renewal,
expiry and release, and ``<node>.sensor_partition`` read from the datastore."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from poundcake.config_sections import SensorContainerSection
from poundcake.db.session import unit_of_work
from poundcake.db.types import utcnow
from poundcake.engine.keyvalue import service as keyvalue
from poundcake.engine.runtime import EngineRuntime
from poundcake.engine.sensors.partitioners import make_partitioner
from poundcake.engine.sensors.service import (
    SensorToRun,
    claim_sensors,
    release_sensors,
)
from tests.integration.support.engine_stack import engine_stack

REFS = ["pack.A", "pack.B", "pack.C"]


@pytest.fixture
def runtime(tmp_path: Path, scratch_database: str) -> Iterator[EngineRuntime]:
    with engine_stack(tmp_path, scratch_database) as stack:
        yield stack.runtime


def claim(runtime: EngineRuntime, holder: str, refs: list[str], at: float = 0) -> set[str]:
    with unit_of_work(runtime.sessions) as session:
        return claim_sensors(
            session=session,
            holder=holder,
            refs=refs,
            now=utcnow() + timedelta(seconds=at),
            lease_seconds=10,
        )


def test_one_holder_at_a_time_until_the_lease_expires_or_is_released(
    runtime: EngineRuntime,
) -> None:
    assert claim(runtime, "first", REFS) == set(REFS)
    assert claim(runtime, "second", REFS) == set()
    # Renewal keeps them; a sensor the first no longer wants is released for the second.
    assert claim(runtime, "first", REFS[:2], at=5) == set(REFS[:2])
    assert claim(runtime, "second", REFS, at=6) == {"pack.C"}
    # The first stops renewing: after its lease (10 s from its last renewal) the second takes over.
    assert claim(runtime, "second", REFS, at=14) == {"pack.C"}
    assert claim(runtime, "second", REFS, at=16) == set(REFS)
    with unit_of_work(runtime.sessions) as session:
        release_sensors(session=session, holder="second")
    assert claim(runtime, "first", REFS, at=17) == set(REFS)


def sensors() -> list[SensorToRun]:
    return [
        SensorToRun(
            ref=ref,
            pack="pack",
            class_name=ref.split(".")[1],
            file_path=Path("/x.py"),
            pack_path=None,
            poll_interval=None,
            trigger_types=(),
        )
        for ref in REFS
    ]


def test_the_kvstore_partitioner_reads_the_nodes_key(runtime: EngineRuntime) -> None:
    partitioner = make_partitioner(
        SensorContainerSection(partition_provider="name:kvstore", sensor_node_name="node7")
    )

    def chosen(session: Session) -> list[str]:
        return [sensor.ref for sensor in partitioner.select(session, sensors())]

    with unit_of_work(runtime.sessions) as session:
        assert chosen(session) == []  # no key: nothing runs here (logged)
        keyvalue.set_value(session, name="node7.sensor_partition", value="pack.B, pack.C")
    with unit_of_work(runtime.sessions) as session:
        assert chosen(session) == ["pack.B", "pack.C"]
