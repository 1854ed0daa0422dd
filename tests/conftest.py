"""Test-suite wide hooks: mark integration tests, and fail a run that needed them but skipped them.

With ``POUNDCAKE_REQUIRE_INTEGRATION=1`` (set by the README's test command and CI) a run fails if no
integration test ran or any was skipped: a green run must have talked to the real servers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

INTEGRATION_DIRS = ("integration", "e2e", "faults", "security")
SEED_DATABASES_MODULE = "tests.integration.layouts"
_outcomes = {"passed": 0, "failed": 0, "skipped": 0}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    parallel = config.pluginmanager.hasplugin("xdist")
    for item in items:
        if Path(item.path).parent.name in INTEGRATION_DIRS:
            item.add_marker(pytest.mark.integration)
        if parallel:
            item.add_marker(pytest.mark.xdist_group(_parallel_group(item)))


def _parallel_group(item: pytest.Item) -> str:
    """Keep a module on one worker (its module fixtures start once), and every module that builds
    the install guide's literal ``poundcake``/``stackstorm`` databases and users on the same one."""
    module = getattr(item, "module", None)
    if module is not None and any(
        getattr(value, "__module__", None) == SEED_DATABASES_MODULE
        for value in vars(module).values()
    ):
        return "seed-databases"
    return str(item.path)


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
