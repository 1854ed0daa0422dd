"""The engine with ``st2rulesengine``, ``st2notifier`` and ``st2workflowengine`` and the
``notify_tests`` pack (``tests/fixtures/packs/notifications``), for the notify and policy tests.

The pack's rule on ``core.st2.generic.notifytrigger`` runs ``core.local`` with
``echo <route> <message> <execution id> <status>``: :func:`recorded` reads what it recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from poundcake.config import load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.states import COMPLETED
from poundcake.engine.executions.states import ExecutionStatus as S
from poundcake.engine.notifier.models import NotifierPendingDB
from poundcake.engine.triggers.models import TriggerInstanceDB
from tests.integration.support.commands import BIN
from tests.integration.support.pack_actions import engine_api
from tests.integration.support.st2cli import (
    SERVICES,
    RunningEngine,
    St2,
    eventually,
    logged_in,
    running_engine,
)
from tests.paths import REPOSITORY

PACKS = REPOSITORY / "tests" / "fixtures" / "packs" / "notifications"
NOTIFY_SERVICES = (*SERVICES, "st2rulesengine", "st2notifier", "st2workflowengine")
RECORDING_RULE = "notify_tests.record_notifications"
CONF = (
    f"[content]\npacks_base_paths = {PACKS}\n\n"
    "[rulesengine]\npoll_interval = 0.3\n\n[workflow_engine]\nsweep_interval = 0.5\n\n"
)


@contextmanager
def notify_engine(directory: Path, extra_conf: str = "") -> Iterator[RunningEngine]:
    """The engine with the notifier, the rules and workflow engines and ``notify_tests``."""
    with running_engine(directory, services=NOTIFY_SERVICES, extra_conf=CONF + extra_conf) as run:
        yield run


def spawn(engine: RunningEngine, name: str) -> subprocess.Popen[bytes]:
    """Start the service ``name`` (``st2notifier``; ``st2scheduler-2`` for a second one), logging
    to ``<name>.log``; it is stopped with the engine's other processes."""
    log = (engine.directory / f"{name}.log").open("ab")
    process = subprocess.Popen(
        [str(BIN / name.removesuffix("-2")), "--config-file", str(engine.config_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    engine.processes[name] = process
    return process


def kill(engine: RunningEngine, name: str) -> None:
    """SIGKILL the service ``name`` and wait until it is gone."""
    process = engine.processes[name]
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def module_fixtures(
    name: str, *, extra_services: tuple[str, ...] = ()
) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """A test module's ``engine`` (:func:`notify_engine`, plus a second instance of each of
    ``extra_services``), ``st2`` (a logged-in CLI) and ``api`` (with its token) fixtures::

        engine, st2, api = module_fixtures("notify")
    """

    @pytest.fixture(scope="module")
    def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
        with notify_engine(tmp_path_factory.mktemp(name)) as running:
            for service in extra_services:
                spawn(running, f"{service}-2")
            yield running

    @pytest.fixture
    def st2(engine: RunningEngine, tmp_path: Path) -> St2:
        return logged_in(engine, tmp_path / "home")

    @pytest.fixture
    def api(engine: RunningEngine, st2: St2) -> Iterator[httpx.Client]:
        with engine_api(engine, st2) as client:
            yield client

    return engine, st2, api


def engine_settled(engine: RunningEngine, timeout: float = 60) -> None:
    """Wait until the engine has nothing left to do: the notifier has processed every finished
    run (a run is marked in the transaction that ends it), no trigger instance waits for the
    rules engine and no execution is under way. What has not appeared by then never will, so
    a test may assert that something did not happen."""
    database = make_st2_engine(load_st2_config(engine.config_path), pool_size=1)
    # Paused and pending executions wait for a person, not for the engine.
    unfinished = sorted(
        status.value for status in S if status not in COMPLETED | {S.PAUSED, S.PENDING}
    )
    checks = [
        sa.select(sa.func.count()).select_from(NotifierPendingDB),
        sa.select(sa.func.count()).where(TriggerInstanceDB.status == "pending"),
        sa.select(sa.func.count()).where(ExecutionDB.status.in_(unfinished)),
    ]
    try:

        def settled() -> bool:
            with database.connect() as connection:
                return all(connection.execute(check).scalar_one() == 0 for check in checks)

        eventually(settled, "the engine to settle", timeout=timeout)
    finally:
        database.dispose()


def executions(api: httpx.Client, action: str, attributes: str = "") -> list[dict[str, Any]]:
    """Every execution of ``action``, oldest first."""
    params = {"action": action, "limit": "-1", "sort_asc": "true"}
    if attributes:
        params["include_attributes"] = attributes
    response = api.get("/executions", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def recorded(api: httpx.Client, execution_id: str) -> list[str]:
    """What the recording rule printed for each notification about ``execution_id``."""
    lines = []
    for execution in executions(api, "core.local", "id,status,result,rule,trigger_instance"):
        if (execution.get("rule") or {}).get("ref") != RECORDING_RULE:
            continue
        payload = (execution.get("trigger_instance") or {}).get("payload") or {}
        if payload.get("execution_id") != execution_id:
            continue
        if execution["status"] == "succeeded":
            lines.append(str(execution["result"]["stdout"]).strip())
    return sorted(lines)


def wait_recorded(
    api: httpx.Client, execution_id: str, count: int, timeout: float = 60
) -> list[str]:
    """Wait until the rule recorded ``count`` notifications about ``execution_id``."""
    return list(
        eventually(
            lambda: (lines := recorded(api, execution_id)) and len(lines) >= count and lines,
            f"{count} notifications recorded for {execution_id}",
            timeout=timeout,
        )
    )


def notify_payloads(api: httpx.Client, execution_id: str) -> list[dict[str, Any]]:
    """The payloads of the notify trigger instances about ``execution_id``."""
    response = api.get(
        "/triggerinstances",
        params={"trigger": "core.st2.generic.notifytrigger", "limit": "-1"},
    )
    assert response.status_code == 200, response.text
    return [
        instance["payload"]
        for instance in response.json()
        if instance["payload"].get("execution_id") == execution_id
    ]
