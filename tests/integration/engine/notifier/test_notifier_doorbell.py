"""``st2notifier`` wakes when an execution ends: the ``st2.execution__update`` event rings its
queue. Its poll here is ten minutes long, so only the doorbell can post the notify trigger
within the test's wait; a notifier that only polled would fail it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.integration.support.notify_cli import notify_engine, notify_payloads
from tests.integration.support.pack_actions import engine_api
from tests.integration.support.st2cli import RunningEngine, eventually, logged_in

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("notifier-doorbell")
    with notify_engine(directory, extra_conf="[notifier]\npoll_interval = 600\n") as running:
        yield running


@pytest.fixture
def api(engine: RunningEngine, tmp_path: Path) -> Iterator[httpx.Client]:
    with engine_api(engine, logged_in(engine, tmp_path / "home")) as client:
        yield client


def test_an_ending_execution_wakes_the_notifier(engine: RunningEngine, api: httpx.Client) -> None:
    assert "Notifier woken by execution updates, polling every 600.0s" in engine.log("st2notifier")
    for _ in range(2):  # the second proves the first round did not just happen to come late
        notify = {"on-complete": {"routes": ["ops"], "message": "rang"}}
        created = api.post("/executions", json={"action": "notify_tests.quiet", "notify": notify})
        assert created.status_code == 201, created.text
        execution_id = created.json()["id"]
        payloads = eventually(
            lambda execution_id=execution_id: notify_payloads(api, execution_id),
            "the notify trigger posted after the doorbell",
            timeout=120,
        )
        assert [(p["route"], p["message"], p["status"]) for p in payloads] == [
            ("ops", "rang", "succeeded")
        ]
