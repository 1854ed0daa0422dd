"""``st2 service-registry`` through the official CLI, with MariaDB as the coordination backend
(``[coordination] url = mysql://...``, ``service_registry = True``): every engine process joins
its group, and one killed with SIGKILL drops out."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.support import st2cli
from tests.integration.support.mariadb import (
    ADMIN_HOST,
    ADMIN_PORT,
    ADMIN_USER,
    create_fixture_database,
    drop_fixture_database,
)
from tests.integration.support.st2cli import RunningEngine, St2, eventually, listing

SERVICES = ("st2api", "st2auth", "st2scheduler", "st2actionrunner", "st2rulesengine")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    database = f"pctest_cli_{uuid.uuid4().hex[:12]}"
    create_fixture_database(database)
    extra = (
        "[coordination]\n"
        f"url = mysql://{ADMIN_USER}@{ADMIN_HOST}:{ADMIN_PORT}/{database}\n"
        "service_registry = True\nlock_timeout = 3\n"
    )
    try:
        directory = tmp_path_factory.mktemp("registry")
        with st2cli.running_engine(directory, database, SERVICES, extra) as running:
            yield running
    finally:
        drop_fixture_database(database)


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    return st2cli.logged_in(engine, tmp_path / "home")


def groups(st2: St2) -> set[str]:
    return {group["group_id"] for group in listing(st2("service-registry", "group", "list", "-j"))}


def test_every_process_shows_in_the_service_registry(engine: RunningEngine, st2: St2) -> None:
    wanted = {"api", "auth", "scheduler", "actionrunner", "rulesengine"}
    eventually(lambda: wanted <= groups(st2), "every service's group")

    members = listing(st2("service-registry", "member", "list", "--group-id", "actionrunner", "-j"))
    [runner] = members
    pid = engine.processes["st2actionrunner"].pid
    assert runner["group_id"] == "actionrunner"
    assert runner["member_id"].endswith(f"_{pid}")
    assert runner["capabilities"]["pid"] == pid
    assert runner["capabilities"]["name"] == "actionrunner"
    assert runner["capabilities"]["type"] == "passive"

    [api] = listing(st2("service-registry", "member", "list", "--group-id", "api", "-j"))
    assert api["capabilities"]["listen_port"] == engine.api_port
    assert api["capabilities"]["type"] == "active"

    everyone = listing(st2("service-registry", "member", "list", "-j"))
    assert {member["group_id"] for member in everyone} == wanted
    shown = st2("service-registry", "member", "list")
    assert shown.returncode == 0 and "actionrunner" in shown.stdout

    missing = st2("service-registry", "member", "list", "--group-id", "nope")
    assert 'Group with ID "nope" not found.' in missing.stdout + missing.stderr

    # Datastore writes take their key's lock on MariaDB.
    for _ in range(2):
        assert st2("key", "set", "registry.key", "v").returncode == 0
    assert st2("key", "delete", "registry.key").returncode == 0

    # A process killed with SIGKILL stops heartbeating and leaves the listing.
    engine.processes["st2rulesengine"].send_signal(signal.SIGKILL)
    eventually(
        lambda: (
            listing(st2("service-registry", "member", "list", "--group-id", "rulesengine", "-j"))
            == []
        ),
        "the killed rules engine to leave",
        timeout=30,
    )
