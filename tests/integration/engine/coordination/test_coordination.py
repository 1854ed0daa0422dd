"""``[coordination]`` on MariaDB: tooz's MySQL locks and our group tables, between real processes.

A helper process (this module run as a script) takes a lock or joins a group and waits; the test
contends with it from its own coordinator, then kills it with SIGKILL, as a crash would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tooz.coordination import GroupNotCreated, MemberNotJoined

from poundcake.config_sections import CoordinationSection
from poundcake.engine.coordination.service import (
    locked,
    member_id,
    register_service,
    registry_groups,
    registry_members,
    singleton,
    start_coordinator,
    stop_coordinator,
)
from poundcake.engine.garbage.process import LOCK, GarbageCollector
from poundcake.exceptions import ConfigurationError, NotFoundError
from tests.integration.support.mariadb import ADMIN_HOST, ADMIN_PORT, ADMIN_USER, admin_sql
from tests.integration.support.st2cli import eventually
from tests.paths import REPOSITORY


def coordination_url(database: str) -> str:
    return f"mysql://{ADMIN_USER}@{ADMIN_HOST}:{ADMIN_PORT}/{database}"


@pytest.fixture
def section(scratch_database: str) -> CoordinationSection:
    return CoordinationSection(url=coordination_url(scratch_database), lock_timeout=2)


@pytest.fixture
def coordinator(section: CoordinationSection) -> Iterator[Any]:
    started = start_coordinator(section)
    yield started
    stop_coordinator(started)


class Helper:
    """Another process with its own coordinator: ``lock <name>`` or ``join <group>``."""

    def __init__(self, section: CoordinationSection, *command: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, section.model_dump_json(), *command],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPOSITORY,
            env={**os.environ, "PYTHONPATH": f"{REPOSITORY}{os.pathsep}{REPOSITORY / 'src'}"},
        )
        assert self.process.stdout is not None
        self.said = json.loads(self.process.stdout.readline())

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def test_two_processes_contend_for_one_lock(section: CoordinationSection, coordinator: Any) -> None:
    helper = Helper(section, "lock", "st2timersengine")
    try:
        assert helper.said == {"held": True}
        with singleton(coordinator, "st2timersengine") as held:
            assert held is False
        with singleton(coordinator, "another") as held:
            assert held is True
        waited = coordinator.get_lock(b"st2timersengine")
        started = time.monotonic()
        assert waited.acquire(blocking=True, timeout=1) is False
        assert time.monotonic() - started >= 0.9
        helper.kill()  # a crashed holder's connection closes, and MariaDB releases its lock

        def taken() -> bool:
            with singleton(coordinator, "st2timersengine") as held:
                return held

        assert eventually(taken, "the lock after its holder died", timeout=20)
    finally:
        helper.kill()


def test_two_garbage_collectors_never_collect_together(
    section: CoordinationSection, coordinator: Any, tmp_path: Path
) -> None:
    helper = Helper(section, "lock", LOCK)
    try:
        runtime = _Runtime(coordinator)
        collector = GarbageCollector(runtime)  # type: ignore[arg-type]
        assert collector.collect_if_alone() is None
    finally:
        helper.kill()


class _Runtime:
    """The part of the engine runtime the collector's lock needs."""

    def __init__(self, coordinator: Any) -> None:
        self._coordinator = coordinator

    def coordinator(self) -> Any:
        return self._coordinator


def test_membership_across_processes_and_its_lapse(
    section: CoordinationSection, coordinator: Any
) -> None:
    helper = Helper(section, "join", "actionrunner")
    try:
        assert registry_groups(coordinator) == ["actionrunner"]
        [member] = registry_members(coordinator, "actionrunner")
        assert member["group_id"] == "actionrunner"
        assert member["member_id"] == helper.said["member_id"]
        capabilities = member["capabilities"]
        assert capabilities["name"] == "actionrunner" and capabilities["type"] == "passive"
        assert capabilities["pid"] == helper.process.pid
        # Its heart keeps it listed past lock_timeout (2 s) ...
        time.sleep(3)
        assert len(registry_members(coordinator, "actionrunner")) == 1
        # ... and a killed member drops out once its membership lapses.
        helper.kill()
        eventually(
            lambda: registry_members(coordinator, "actionrunner") == [],
            "the dead member to lapse",
            timeout=15,
        )
        assert registry_groups(coordinator) == ["actionrunner"]
    finally:
        helper.kill()
    with pytest.raises(NotFoundError, match='Group with ID "nope" not found'):
        registry_members(coordinator, "nope")


def test_join_and_leave(coordinator: Any) -> None:
    register_service(coordinator, "rulesengine", {"name": "rulesengine", "type": "passive"})
    [member] = registry_members(coordinator, "rulesengine")
    assert member["member_id"] == member_id().decode()
    coordinator.leave_group(b"rulesengine").get()
    assert registry_members(coordinator, "rulesengine") == []
    with pytest.raises(MemberNotJoined):
        coordinator.leave_group(b"rulesengine").get()
    with pytest.raises(GroupNotCreated):
        coordinator.join_group(b"missing").get()


def test_an_unreachable_backend_is_refused_naming_the_setting() -> None:
    section = CoordinationSection(url="mysql://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(ConfigurationError, match=r"\[coordination\] url") as refused:
        start_coordinator(section)
    assert "secret" not in str(refused.value)


def _helper(settings: str, command: str, name: str) -> None:
    coordinator = start_coordinator(CoordinationSection.model_validate_json(settings))
    if command == "lock":
        lock = coordinator.get_lock(name.encode())
        print(json.dumps({"held": lock.acquire(blocking=False)}), flush=True)
    else:
        register_service(coordinator, name, {"name": name, "type": "passive"})
        print(json.dumps({"member_id": member_id().decode()}), flush=True)
    time.sleep(600)


if __name__ == "__main__":
    _helper(*sys.argv[1:])


def test_a_user_without_create_needs_the_tables_made_once(scratch_database: str) -> None:
    user = f"pccoord_{scratch_database[-8:]}"
    admin_sql(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{scratch_database}`.* TO '{user}'@'%'",
    )
    try:
        url = f"mysql://{user}:pw@{ADMIN_HOST}:{ADMIN_PORT}/{scratch_database}"
        limited = CoordinationSection(url=url)
        with pytest.raises(ConfigurationError, match=r"coordination_groups .* missing") as refused:
            start_coordinator(limited)
        assert "pw@" not in str(refused.value)
        stop_coordinator(
            start_coordinator(CoordinationSection(url=coordination_url(scratch_database)))
        )
        coordinator = start_coordinator(limited)  # the tables exist: DML rights suffice
        try:
            register_service(coordinator, "api", {"name": "api", "type": "active"})
            assert registry_groups(coordinator) == ["api"]
        finally:
            stop_coordinator(coordinator)
    finally:
        admin_sql(f"DROP USER IF EXISTS '{user}'@'%'")


def test_a_long_lock_name_works_on_mysql(coordinator: Any) -> None:
    """A datastore key's lock name may be 500 characters; MySQL's GET_LOCK takes 64 at most."""
    name = "kvp-crud-st2kv.system." + "k" * 500
    with locked(coordinator, name), singleton(coordinator, "other") as held:
        assert held is True
