"""Which sensors a container may run: StackStorm's ``[sensorcontainer] partition_provider``.

``name:default`` offers every enabled sensor; ``name:kvstore`` the refs listed (comma-separated)
in the datastore key ``<sensor_node_name>.sensor_partition``; ``name:file`` (with
``partition_file``) the refs listed under ``sensor_node_name`` in a YAML file; ``name:hash``
(with ``hash_ranges``, e.g. ``0..1024|2048..MAX``) the sensors whose ref hashes into a range,
with StackStorm's hash. ``--sensor-ref`` runs one sensor. An empty list means every sensor, as
in StackStorm. Which container among those offered a sensor runs it is settled by leases
(:mod:`poundcake.engine.sensors.service`), so each sensor runs once.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml
from sqlalchemy.orm import Session

from poundcake.config_sections import SensorContainerSection
from poundcake.engine.keyvalue import service as keyvalue
from poundcake.engine.sensors.service import SensorToRun
from poundcake.exceptions import ConfigurationError, NotFoundError

logger = logging.getLogger(__name__)

SETTING = "[sensorcontainer] partition_provider"
RANGE_MAX = 2**32


class Partitioner(Protocol):
    """Chooses the sensors this container may run among the enabled ones."""

    def select(self, session: Session, sensors: list[SensorToRun]) -> list[SensorToRun]: ...


def _by_refs(sensors: list[SensorToRun], refs: set[str]) -> list[SensorToRun]:
    if not refs:
        return sensors
    return [sensor for sensor in sensors if sensor.ref in refs]


class DefaultPartitioner:
    """Every enabled sensor."""

    def select(self, session: Session, sensors: list[SensorToRun]) -> list[SensorToRun]:
        return sensors


@dataclass
class KVStorePartitioner:
    """The refs in the datastore key ``<node>.sensor_partition``."""

    node: str

    def select(self, session: Session, sensors: list[SensorToRun]) -> list[SensorToRun]:
        key = f"{self.node}.sensor_partition"
        try:
            value = keyvalue.get_value(session, name=key).value or ""
        except NotFoundError:
            logger.error(
                "%s is kvstore but the datastore has no key %s: no sensor runs", SETTING, key
            )
            return []
        return [
            sensor for sensor in sensors if sensor.ref in {ref.strip() for ref in value.split(",")}
        ]


@dataclass
class FilePartitioner:
    """The refs listed under the node's name in a YAML file."""

    node: str
    refs: set[str]

    @classmethod
    def from_file(cls, node: str, partition_file: str) -> FilePartitioner:
        path = Path(partition_file).expanduser()
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise ConfigurationError(
                f"{SETTING} partition_file", f"cannot read {path}: {error}"
            ) from None
        if not isinstance(document, dict) or document.get(node) is None:
            raise ConfigurationError(
                f"{SETTING} partition_file", f"Sensor partition not found for {node} in {path}."
            )
        return cls(node=node, refs={str(ref) for ref in document[node] or []})

    def select(self, session: Session, sensors: list[SensorToRun]) -> list[SensorToRun]:
        return _by_refs(sensors, self.refs)


def sensor_ref_hash(ref: str) -> int:
    """StackStorm's hash of a sensor ref (md5, folded into 32 bits digit by digit)."""
    digits = str(int(hashlib.md5(ref.encode(), usedforsecurity=False).hexdigest(), 16))
    value = ctypes.c_uint(0)
    for digit in reversed(digits):
        higher = ctypes.c_uint(value.value & 0xF8000000)
        value = ctypes.c_uint(value.value << 5)
        value = ctypes.c_uint(value.value ^ (higher.value >> 27))
        value = ctypes.c_uint(value.value ^ int(digit))
    return value.value


def _boundary(text: str) -> int:
    word = text.strip().lower()
    if word == "min":
        return 0
    if word == "max":
        return RANGE_MAX
    try:
        return min(max(int(word), 0), RANGE_MAX)
    except ValueError:
        raise ConfigurationError(
            f"{SETTING} hash_ranges", f"{text!r} is not a number, min or max"
        ) from None


def parse_hash_ranges(text: str) -> list[tuple[int, int]]:
    """Read ``0..1024|2048..MAX`` into half-open ranges."""
    ranges = []
    for part in text.split("|"):
        bounds = part.split("..")
        if len(bounds) != 2:
            raise ConfigurationError(
                f"{SETTING} hash_ranges", f"Unsupported sub-range format {part.strip()!r}"
            )
        start, end = _boundary(bounds[0]), _boundary(bounds[1])
        if start > end:
            raise ConfigurationError(
                f"{SETTING} hash_ranges", f"Misconfigured range [{start}..{end}]"
            )
        ranges.append((start, end))
    return ranges


@dataclass
class HashPartitioner:
    """The sensors whose ref hashes into one of the ranges."""

    ranges: list[tuple[int, int]]

    def select(self, session: Session, sensors: list[SensorToRun]) -> list[SensorToRun]:
        chosen = []
        for sensor in sensors:
            value = sensor_ref_hash(sensor.ref)
            if any(start <= value < end for start, end in self.ranges):
                chosen.append(sensor)
        return chosen


@dataclass
class SingleSensorPartitioner:
    """One sensor, named on the command line (``--sensor-ref``)."""

    ref: str

    def select(self, session: Session, sensors: list[SensorToRun]) -> list[SensorToRun]:
        chosen = [sensor for sensor in sensors if sensor.ref == self.ref]
        if not chosen:
            logger.warning("Sensor %s is not registered or not enabled", self.ref)
        return chosen


def parse_provider(text: str) -> dict[str, str]:
    """Read StackStorm's dictionary option ``name:hash,hash_ranges:0..MAX``."""
    values: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, separator, value = item.partition(":")
        if not separator:
            raise ConfigurationError(SETTING, f"{item.strip()!r} is not key:value")
        values[key.strip()] = value.strip()
    if "name" not in values:
        raise ConfigurationError(SETTING, "name is missing (for example name:default)")
    return values


def _expect(values: dict[str, str], allowed: set[str]) -> None:
    extra = sorted(set(values) - allowed - {"name"})
    if extra:
        raise ConfigurationError(
            SETTING, f"{', '.join(extra)} not supported by name:{values['name']}"
        )
    missing = sorted(allowed - set(values))
    if missing:
        raise ConfigurationError(SETTING, f"name:{values['name']} needs {', '.join(missing)}")


def make_partitioner(section: SensorContainerSection, sensor_ref: str | None = None) -> Partitioner:
    """The partitioner the settings ask for; a ConfigurationError names what cannot work."""
    if sensor_ref:
        return SingleSensorPartitioner(sensor_ref)
    values = parse_provider(section.partition_provider)
    name = values["name"].lower()
    node = section.sensor_node_name
    builders: dict[str, Callable[[], Partitioner]] = {
        "default": DefaultPartitioner,
        "kvstore": lambda: KVStorePartitioner(node),
        "file": lambda: FilePartitioner.from_file(node, values["partition_file"]),
        "hash": lambda: HashPartitioner(parse_hash_ranges(values["hash_ranges"])),
    }
    needs = {
        "default": set(),
        "kvstore": set(),
        "file": {"partition_file"},
        "hash": {"hash_ranges"},
    }
    if name not in builders:
        raise ConfigurationError(
            SETTING,
            f"Partition provider {values['name']} not found (default, kvstore, file or hash)",
        )
    _expect(values, needs[name])
    logger.info("Using partitioner %s with sensornode %s", name, node)
    return builders[name]()
