"""Test-suite wide hooks: mark integration tests, and fail a run that needed them but skipped them.

With ``POUNDCAKE_REQUIRE_INTEGRATION=1`` (set by the README's test command and CI) a run fails if no
integration test ran or any was skipped: a green run must have talked to the real servers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
# The kinds that need the real servers: a test's kind is its first folder under tests/.
INTEGRATION_KINDS = frozenset({"integration", "e2e", "faults", "security"})
_outcomes = {"passed": 0, "failed": 0, "skipped": 0}


# Modules that create the install guide's literal ``poundcake``/``stackstorm`` databases and users:
# parallel test processes must never run two of them at once.
SEED_DATABASE_MODULES = frozenset(
    {"test_layout_prefixed.py", "test_layout_single_database.py", "test_layout_two_databases.py"}
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


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_FileScheduler(), "poundcake-file-scheduler")


def kind_of_test_file(path: Path) -> str | None:
    """The kind of a test file: the folder under tests/ it sits in, however deep (None outside)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(TESTS):
        return None
    parts = resolved.relative_to(TESTS).parts
    return parts[0] if len(parts) > 1 else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if kind_of_test_file(Path(item.path)) in INTEGRATION_KINDS:
            item.add_marker(pytest.mark.integration)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "integration" not in report.keywords:
        return
    if report.skipped:
        _outcomes["skipped"] += 1
    elif report.when == "call":
        _outcomes["passed" if report.passed else "failed"] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if (
        os.environ.get("POUNDCAKE_REQUIRE_INTEGRATION") != "1"
        or "PYTEST_XDIST_WORKER" in os.environ
    ):
        return
    ran = _outcomes["passed"] + _outcomes["failed"]
    if ran == 0 or _outcomes["skipped"]:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"integration tests are required: {ran} ran, {_outcomes['skipped']} skipped "
            "(are MariaDB, Redis and RabbitMQ running?)"
        )
        if reporter is not None:
            reporter.write_line(f"ERROR: {message}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
