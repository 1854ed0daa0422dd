"""Test-suite wide hooks: mark integration tests, and fail a run that needed them but skipped them.

With ``POUNDCAKE_REQUIRE_INTEGRATION=1`` (set by the README's test command and CI) a run fails if no
integration test ran or any was skipped: a green run must have talked to the real servers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

INTEGRATION_DIRS = ("integration", "e2e", "faults", "security")
_outcomes = {"passed": 0, "failed": 0, "skipped": 0}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.path).parent.name in INTEGRATION_DIRS:
            item.add_marker(pytest.mark.integration)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "integration" not in report.keywords:
        return
    if report.skipped:
        _outcomes["skipped"] += 1
    elif report.when == "call":
        _outcomes["passed" if report.passed else "failed"] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("POUNDCAKE_REQUIRE_INTEGRATION") != "1":
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
