"""StackStorm's ``[sensorcontainer] partition_provider`` settings: what each provider offers and
what is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from poundcake.config_sections import SensorContainerSection
from poundcake.engine.sensors.partitioners import (
    DefaultPartitioner,
    FilePartitioner,
    HashPartitioner,
    make_partitioner,
    parse_hash_ranges,
    sensor_ref_hash,
)
from poundcake.engine.sensors.service import SensorToRun
from poundcake.exceptions import ConfigurationError

REFS = [f"pack{index}.Sensor{index}" for index in range(40)]


def sensors(refs: list[str]) -> list[SensorToRun]:
    return [
        SensorToRun(
            ref=ref,
            pack=ref.split(".")[0],
            class_name=ref.split(".")[1],
            file_path=Path("/packs/x.py"),
            pack_path=None,
            poll_interval=None,
            trigger_types=(),
        )
        for ref in refs
    ]


def section(provider: str, node: str = "sensornode1") -> SensorContainerSection:
    return SensorContainerSection(partition_provider=provider, sensor_node_name=node)


def selected(provider: str, node: str = "sensornode1") -> list[str]:
    partitioner = make_partitioner(section(provider, node))
    return [sensor.ref for sensor in partitioner.select(None, sensors(REFS))]  # type: ignore[arg-type]


def test_the_default_provider_offers_every_sensor() -> None:
    assert isinstance(make_partitioner(section("name:default")), DefaultPartitioner)
    assert selected("name:default") == REFS


def test_hash_ranges_split_the_sensors_between_nodes_without_overlap() -> None:
    first = selected("name:hash, hash_ranges:min..2147483648")
    second = selected("name:hash,hash_ranges:2147483648..MAX")
    assert first and second
    assert sorted(first + second) == sorted(REFS)
    assert not set(first) & set(second)
    assert selected("name:hash,hash_ranges:0..1|1..MAX") == REFS


def test_the_hash_is_stackstorms_32_bit_fold_of_the_md5() -> None:
    value = sensor_ref_hash("linux.FileWatchSensor")
    assert 0 <= value < 2**32
    assert value == sensor_ref_hash("linux.FileWatchSensor")
    assert value != sensor_ref_hash("linux.FileWatchSensor2")
    assert isinstance(make_partitioner(section("name:hash,hash_ranges:0..MAX")), HashPartitioner)


def test_the_file_provider_reads_the_nodes_list(tmp_path: Path) -> None:
    partition = tmp_path / "partition.yaml"
    partition.write_text("sensornode1:\n  - pack1.Sensor1\n  - pack3.Sensor3\nother: []\n")
    provider = f"name:file,partition_file:{partition}"
    assert isinstance(make_partitioner(section(provider)), FilePartitioner)
    assert selected(provider) == ["pack1.Sensor1", "pack3.Sensor3"]
    # An empty list means every sensor, as in StackStorm.
    assert selected(provider, node="other") == REFS
    with pytest.raises(ConfigurationError, match="Sensor partition not found for missing"):
        make_partitioner(section(provider, node="missing"))


def test_single_sensor_mode_runs_the_named_sensor_only() -> None:
    partitioner = make_partitioner(section("name:default"), sensor_ref="pack2.Sensor2")
    chosen = partitioner.select(None, sensors(REFS))  # type: ignore[arg-type]
    assert [sensor.ref for sensor in chosen] == ["pack2.Sensor2"]


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        ("name:zookeeper", "Partition provider zookeeper not found"),
        ("default", "'default' is not key:value"),
        ("partition_file:/x", "name is missing"),
        ("name:file", "name:file needs partition_file"),
        ("name:hash", "name:hash needs hash_ranges"),
        ("name:default,hash_ranges:0..MAX", "hash_ranges not supported by name:default"),
        ("name:hash,hash_ranges:10..5", "Misconfigured range"),
        ("name:hash,hash_ranges:a..5", "'a' is not a number"),
        ("name:hash,hash_ranges:0-5", "Unsupported sub-range format"),
    ],
)
def test_what_cannot_work_is_refused_naming_the_setting(provider: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match="partition_provider") as raised:
        make_partitioner(section(provider))
    assert message in str(raised.value)


def test_hash_range_boundaries_are_clamped_as_in_stackstorm() -> None:
    assert parse_hash_ranges("min..max") == [(0, 2**32)]
    assert parse_hash_ranges("-5..99999999999") == [(0, 2**32)]
