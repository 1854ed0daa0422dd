"""``[coordination]`` without a backend, and the urls that are refused when st2.conf is read."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from tooz.coordination import GroupNotCreated, MemberAlreadyExist

from poundcake.config import load_st2_config
from poundcake.config_sections import CoordinationSection
from poundcake.engine.coordination import service
from poundcake.engine.coordination.local import LocalDriver
from poundcake.engine.coordination.mysql import MySQLGroupsDriver
from poundcake.engine.coordination.service import make_coordinator, singleton
from poundcake.exceptions import ConfigurationError, NotFoundError


def read(tmp_path: Path, coordination: str) -> CoordinationSection:
    path = tmp_path / "st2.conf"
    path.write_text(f"[database]\nbackend = sqlite\n\n[coordination]\n{coordination}")
    return load_st2_config(path).coordination


def test_the_settings_stackstorm_has(tmp_path: Path) -> None:
    section = read(tmp_path, "url = mysql://st2:pw@db:3306/stackstorm\nlock_timeout = 5\n")
    assert (section.lock_timeout, section.service_registry) == (5, False)
    assert read(tmp_path, "service_registry = True\n").service_registry is True
    assert read(tmp_path, "").url is None


@pytest.mark.parametrize(
    "url", ["redis://:pw@localhost:6379", "zookeeper://h:2181", "etcd3gw://h", "file:///tmp/x"]
)
def test_a_scheme_that_cannot_work_here_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"\[coordination\] url in .*st2.conf") as refused:
        read(tmp_path, f"url = {url}\n")
    assert "mysql://" in str(refused.value)
    assert "pw" not in str(refused.value)  # the url may hold a password; it is not repeated


def test_mysql_urls_build_the_mysql_driver() -> None:
    for url in ("mysql://st2:pw@db:3306/stackstorm", "mysql+pymysql://st2:pw@db/stackstorm"):
        driver = make_coordinator(CoordinationSection(url=url, lock_timeout=7), member=b"m")
        assert isinstance(driver, MySQLGroupsDriver)
        assert driver.membership_ttl == 7.0


def test_localhost_is_the_servers_socket_as_for_the_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guide's ``url = mysql://stackstorm:...@localhost:3306/stackstorm`` reaches an account
    made @'localhost' on a server that skips name resolution: through the socket, not TCP."""
    monkeypatch.setenv("POUNDCAKE_MYSQL_SOCKET", "/run/mysqld/test.sock")
    local = make_coordinator(
        CoordinationSection(url="mysql://st2:pw@localhost:3306/stackstorm"), member=b"m"
    )
    assert local._options["unix_socket"] == "/run/mysqld/test.sock"
    remote = make_coordinator(
        CoordinationSection(url="mysql://st2:pw@db.example:3306/stackstorm"), member=b"m"
    )
    assert "unix_socket" not in remote._options
    chosen = make_coordinator(
        CoordinationSection(url="mysql://st2:pw@localhost/stackstorm?unix_socket=/x.sock"),
        member=b"m",
    )
    assert chosen._options["unix_socket"] == "/x.sock"


def test_no_url_warns_as_stackstorm_does_and_locks_locally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        first = make_coordinator(CoordinationSection(), member=b"one")
    assert isinstance(first, LocalDriver)
    assert "Coordination backend is not configured ([coordination] url)" in caplog.text
    second = make_coordinator(CoordinationSection(), member=b"two")
    with singleton(first, "timers") as held:
        assert held is True
        with singleton(second, "timers") as also:
            assert also is False  # one process: its coordinators share the local lock
        results: list[bool] = []

        def other_thread() -> None:
            with singleton(first, "timers") as taken:
                results.append(taken)

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert results == [False]
    with singleton(second, "timers") as held:
        assert held is True


def test_local_groups_are_this_process_only() -> None:
    driver = make_coordinator(CoordinationSection(), member=b"host_1")
    driver.start()
    service.register_service(driver, "api", {"name": "api", "type": "active"})
    assert service.registry_groups(driver) == ["api"]
    [member] = service.registry_members(driver, "api")
    assert member["member_id"] == "host_1"
    assert member["capabilities"]["name"] == "api"
    assert {"hostname", "pid"} <= set(member["capabilities"])
    with pytest.raises(MemberAlreadyExist):
        driver.join_group(b"api").get()
    with pytest.raises(NotFoundError):
        service.registry_members(driver, "scheduler")
    with pytest.raises(GroupNotCreated):
        driver.join_group(b"scheduler").get()
    driver.stop()  # stopping leaves every group
    assert service.registry_members(driver, "api") == []


def test_locked_waits_and_takes_long_names() -> None:
    driver = make_coordinator(CoordinationSection(), member=b"m")
    name = "kvp-crud-st2kv.system." + "k" * 600
    order: list[str] = []
    with service.locked(driver, name):
        waiter = threading.Thread(target=lambda: _take(driver, name, order))
        waiter.start()
        waiter.join(0.2)
        order.append("released")
    waiter.join()
    assert order == ["released", "taken"]


def _take(driver: object, name: str, order: list[str]) -> None:
    with service.locked(driver, name):  # type: ignore[arg-type]
        order.append("taken")
