"""Large results: an 8 MB result is stored whole without holding up other executions, and a
result beyond the configured cap is truncated with a flag, never an error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from poundcake.db.session import unit_of_work
from poundcake.engine.actionrunner.process import ActionRunner, ActionRunnerSettings
from poundcake.engine.executions.completion import ACTION_TRIGGER, RESULT_LIMIT
from poundcake.engine.executions.service import shape_result
from poundcake.engine.triggers.models import TriggerInstanceDB
from tests import factories
from tests.integration.support.engine_stack import EngineStack, engine_stack
from tests.integration.support.shell_engine import SHELL, register_shell_actions

EIGHT_MB = 8 * 1024 * 1024


@pytest.fixture
def stack(tmp_path: Path, scratch_database: str) -> Iterator[EngineStack]:
    with engine_stack(tmp_path, scratch_database) as running:
        register_shell_actions(running.runtime)
        with unit_of_work(running.runtime.sessions) as session:
            factories.runner_type(session, "noop")
            factories.action(session, "tests.noop", "noop")
        yield running


def test_an_8_mb_result_is_stored_while_other_executions_finish(stack: EngineStack) -> None:
    stack.start_scheduler()
    stack.start_runner(concurrency=4)
    big = stack.request(SHELL, {"cmd": f"head -c {EIGHT_MB} /dev/zero | tr '\\0' a"})
    small = [stack.request("tests.noop").execution_id for _ in range(20)]
    assert {stack.wait(execution_id).status for execution_id in small} == {"succeeded"}
    done = stack.wait(big.execution_id, timeout=120)
    assert done.status == "succeeded"
    assert len(done.result["stdout"]) == EIGHT_MB
    assert set(done.result["stdout"]) == {"a"}
    assert done.result_size > EIGHT_MB
    assert done.result_truncated is False


def test_a_result_beyond_the_cap_is_truncated_with_a_flag(stack: EngineStack) -> None:
    runner = ActionRunner(
        stack.runtime, ActionRunnerSettings(concurrency=2, max_result_bytes=100_000)
    )
    stack._thread(runner.run)
    stack.start_scheduler()
    requested = stack.request(SHELL, {"cmd": "head -c 300000 /dev/zero | tr '\\0' b"})
    done = stack.wait(requested.execution_id, timeout=60)
    assert done.status == "succeeded"
    assert done.result_truncated is True
    assert done.result_size > 300_000
    assert done.result["return_code"] == 0
    assert done.result["stdout"].startswith("bbbb")
    assert "truncated" in done.result["stdout"]
    assert len(done.result["stdout"]) < 100_000


def test_shape_result_keeps_small_results_and_always_fits_the_cap() -> None:
    small = {"stdout": "x"}
    assert shape_result(small, 1000) == (small, len('{"stdout": "x"}'), False)
    stored, size, truncated = shape_result(list(range(100_000)), 10_000)
    assert truncated and size > 10_000
    assert stored["truncated"] is True
    assert len(str(stored)) < 10_000


def action_trigger_payloads(stack: EngineStack) -> list[dict[str, Any]]:
    with stack.runtime.sessions() as session:
        query = sa.select(TriggerInstanceDB.payload).where(
            TriggerInstanceDB.trigger == ACTION_TRIGGER
        )
        return list(session.scalars(query))


def test_a_long_result_gives_its_action_trigger_the_start_of_the_stored_text(
    stack: EngineStack,
) -> None:
    stack.start_scheduler()
    stack.start_runner(concurrency=2)
    lines = 'for i in $(seq 1 20000); do echo "line $i: é 日本 🙂 \\"q\\""; done'
    long = stack.wait(stack.request(SHELL, {"cmd": lines}).execution_id, timeout=60)
    short = stack.wait(stack.request(SHELL, {"cmd": "echo short"}).execution_id)
    payloads = {payload["execution_id"]: payload for payload in action_trigger_payloads(stack)}
    stored = json.dumps(long.result, ensure_ascii=False)
    assert long.result_size == len(stored.encode()) > RESULT_LIMIT
    preview = payloads[long.id]["result"]
    assert preview["truncated"] is True
    assert preview["original_size"] == long.result_size
    assert stored.startswith(preview["preview"])
    assert RESULT_LIMIT - 4 < len(preview["preview"].encode()) <= RESULT_LIMIT
    assert payloads[short.id]["result"] == short.result
