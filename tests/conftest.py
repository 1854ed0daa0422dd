"""Test-suite wide hooks: mark integration tests, and fail a run that needed them but skipped them.

With ``POUNDCAKE_REQUIRE_INTEGRATION=1`` (set by the README's test command and CI) a run fails if no
integration test ran, if any was skipped (a test, or a whole module skipped while it was collected,
e.g. by ``pytest.importorskip``), or if an integration test that was collected never reported a
result: a green run must have run every integration test it found against the real servers.
Under pytest-xdist the controller learns what each worker collected from
``pytest_xdist_node_collection_finished`` and gets every report, so the check runs there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

INTEGRATION_DIRS = ("integration", "e2e", "faults", "security")


class _IntegrationRecord:
    """What the integration guard saw: node ids collected, run, skipped; modules skipped."""

    def __init__(self) -> None:
        self.collected: set[str] = set()
        self.ran: set[str] = set()
        self.skipped: set[str] = set()
        self.skipped_modules: set[str] = set()

    def problems(self) -> list[str]:
        """Why this run does not count as having run the integration tests (none: it does)."""
        found = []
        if not self.ran:
            found.append("no integration test ran")
        if self.skipped:
            found.append(f"{len(self.skipped)} skipped")
        if self.skipped_modules:
            found.append(
                f"{len(self.skipped_modules)} module(s) skipped at collection: "
                + ", ".join(sorted(self.skipped_modules))
            )
        missing = self.collected - self.ran - self.skipped
        if missing:
            found.append(
                f"{len(missing)} collected but never run: " + ", ".join(sorted(missing)[:5])
            )
        return found


_record = _IntegrationRecord()


def is_integration(nodeid: str) -> bool:
    """Tell whether a node id (test or module) is under one of the integration folders, at any
    depth (``tests/integration/engine/rules/test_x.py`` too)."""
    folders = Path(nodeid.split("::", 1)[0]).parts[:-1]
    return any(folder in INTEGRATION_DIRS for folder in folders)


# Modules that create the install guide's literal ``poundcake``/``stackstorm`` databases and users:
# parallel test processes must never run two of them at once.
SEED_DATABASE_MODULES = frozenset(
    {
        "test_layout_prefixed.py",
        "test_layout_single_database.py",
        "test_layout_two_databases.py",
        "test_install_guide.py",
    }
)


class _FileScheduler:
    """Parallel runs (pytest-xdist): a test file is one unit of work, so its module fixtures start
    once; the seed-database modules form a single unit, run one after another on one worker."""

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        from xdist.scheduler import LoadScopeScheduling

        class Scheduler(LoadScopeScheduling):  # type: ignore[misc]
            def _split_scope(self, nodeid: str) -> str:
                path = nodeid.split("::", 1)[0]
                return "seed-databases" if Path(path).name in SEED_DATABASE_MODULES else path

        return Scheduler(config, log)

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        _record.collected.update(nodeid for nodeid in ids if is_integration(nodeid))


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_FileScheduler(), "poundcake-file-scheduler")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_integration(item.nodeid):
            item.add_marker(pytest.mark.integration)


def pytest_collection_finish(session: pytest.Session) -> None:
    _record.collected.update(item.nodeid for item in session.items if is_integration(item.nodeid))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped and is_integration(report.nodeid):
        _record.skipped_modules.add(report.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not is_integration(report.nodeid):
        return
    if report.skipped:
        _record.skipped.add(report.nodeid)
    elif report.when == "call" or report.failed:
        _record.ran.add(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if (
        os.environ.get("POUNDCAKE_REQUIRE_INTEGRATION") != "1"
        or "PYTEST_XDIST_WORKER" in os.environ
    ):
        return
    problems = _record.problems()
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"integration tests are required: {len(_record.ran)} ran; "
            + "; ".join(problems)
            + " (are MariaDB, Redis and RabbitMQ running?)"
        )
        if reporter is not None:
            reporter.write_line(f"ERROR: {message}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
