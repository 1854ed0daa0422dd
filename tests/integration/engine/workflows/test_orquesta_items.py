"""Orquesta workflows through the official ``st2`` CLI: with-items and concurrency, retries,
delays, and ``st2kv`` over keys set with ``st2 key set``.

The engine's processes (``st2workflowengine`` included) run the ``orquesta_tests`` pack; timing
claims (concurrency, delays) are read from the executions' logs, never from the test's clock.
"""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import httpx

from tests.integration.support.mariadb import admin_sql
from tests.integration.support.orquesta_cli import (
    PACK,
    children,
    finish,
    logged_at,
    module_fixtures,
    moment,
    of_task,
    rows,
    run_workflow,
    start,
    statuses,
)
from tests.integration.support.st2cli import RunningEngine, St2, output

engine, cli = module_fixtures("orquesta-items")


def test_with_items_over_a_list_and_a_zip_with_concurrency(
    cli: tuple[St2, httpx.Client],
) -> None:
    st2, api = cli
    document, tree = run_workflow(st2, api, "with_items")
    assert document["status"] == "succeeded"
    assert document["result"] == {
        "output": {
            "hosts_seen": ["alpha", "beta", "gamma", "delta"],
            # Orquesta's zip() pads the shorter list with null.
            "pairs": ["alpha:22", "beta:80", "gamma:443", "delta:None"],
        }
    }
    assert tree == rows(
        *[("each_host", "core.local", "succeeded")] * 4,
        *[("pairs", "core.echo", "succeeded")] * 4,
    )
    found = children(api, document["id"])
    hosts = sorted(of_task(found, "each_host"), key=lambda d: d["context"]["orquesta"]["item_id"])
    assert [d["parameters"]["cmd"] for d in hosts] == [
        f"sleep 0.4; echo {host}" for host in ("alpha", "beta", "gamma", "delta")
    ]
    # A concurrency of two: the first two items are requested together, each later one only
    # once an earlier one finished, and never more than two run at a time.
    first_done = min(moment(d["end_timestamp"]) for d in hosts[:2])
    assert all(moment(d["start_timestamp"]) < first_done for d in hosts[:2])
    assert all(moment(d["start_timestamp"]) >= first_done for d in hosts[2:])
    spans = [(logged_at(d, "running"), moment(d["end_timestamp"])) for d in hosts]
    for begun, _ in spans:
        assert sum(1 for start_, end in spans if start_ <= begun < end) <= 2
    pairs = sorted(of_task(found, "pairs"), key=lambda d: d["context"]["orquesta"]["item_id"])
    assert [d["parameters"] for d in pairs] == [
        {"message": message} for message in ("alpha:22", "beta:80", "gamma:443", "delta:None")
    ]
    # A concurrency of one: each pair is requested once the one before it ended.
    for earlier, later in pairwise(pairs):
        assert moment(later["start_timestamp"]) >= moment(earlier["end_timestamp"])


def test_an_empty_list_of_items_succeeds_at_once(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    document, tree = run_workflow(st2, api, "with_items", "hosts=[]", "ports=[]")
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"hosts_seen": [], "pairs": []}}
    assert tree == []


def test_failed_items_end_their_task_executions(
    engine: RunningEngine, cli: tuple[St2, httpx.Client]
) -> None:
    st2, api = cli
    found = re.search(r"^db_name = (\S+)$", engine.config_path.read_text(), re.MULTILINE)
    assert found

    def task_executions(execution_id: str) -> list[tuple[object, ...]]:
        return admin_sql(
            "SELECT t.status, t.end_timestamp IS NOT NULL FROM task_execution_db t "
            "JOIN workflow_execution_db w ON w.id = t.workflow_execution "
            f"WHERE w.action_execution = '{execution_id}' ORDER BY t.start_timestamp, t.id",
            database=found.group(1),
        )

    # At a concurrency of one the first item fails and the others never start ...
    stopped, tree = run_workflow(st2, api, "items_fail", "codes=[1,0,0]")
    assert stopped["status"] == "failed"
    assert tree == rows(("each", "core.local", "failed"))
    # ... and a retry runs every item again in a new task execution.
    retried, tree = run_workflow(
        st2, api, "items_fail", "codes=[0,1]", "concurrency=2", "retries=1"
    )
    assert retried["status"] == "failed"
    assert sorted(row.status for row in tree) == ["failed", "failed", "succeeded", "succeeded"]
    # Every task execution ends, even with items that never started or a retry after it.
    assert task_executions(stopped["id"]) == [("failed", 1)]
    assert task_executions(retried["id"]) == [("failed", 1), ("failed", 1)]


def test_retries_until_success_and_until_the_count_is_spent(
    cli: tuple[St2, httpx.Client], tmp_path: Path
) -> None:
    st2, api = cli
    recovers = start(st2, f"{PACK}.retries", f"counter={tmp_path / 'recovers'}")
    gives_up = start(st2, f"{PACK}.retries", f"counter={tmp_path / 'gives_up'}", "succeed_on=9")

    document, tree = finish(st2, api, recovers)
    assert document["status"] == "succeeded"
    # flaky succeeds on its third attempt; polled is retried by "do: retry" while its result
    # says so, and publishes on its second run.
    assert document["result"] == {"output": {"flaky": "attempt 3", "polled": "5"}}
    assert tree == rows(
        ("flaky", "core.local", "failed"),
        ("flaky", "core.local", "failed"),
        ("flaky", "core.local", "succeeded"),
        ("polled", "core.local", "succeeded"),
        ("polled", "core.local", "succeeded"),
    )
    attempts = of_task(children(api, recovers), "flaky")
    for earlier, later in pairwise(attempts):
        assert later["delay"] == 1000
        assert "delayed" in statuses(later)
        assert logged_at(later, "scheduled") - moment(earlier["end_timestamp"]) >= timedelta(
            seconds=1
        )

    document, tree = finish(st2, api, gives_up)
    assert document["status"] == "failed"
    # One retry spent after another (count 3: four attempts), then the failure transition.
    assert tree == rows(*[("flaky", "core.local", "failed")] * 4)
    result = document["result"]
    assert result["output"] == {"flaky": "attempt 4", "polled": None}
    assert result["errors"] == [
        {
            "type": "error",
            "message": "Execution failed. See result for details.",
            "task_id": "flaky",
            "result": {
                "failed": True,
                "return_code": 1,
                "stderr": "",
                "stdout": f"attempt {attempt}",
                "succeeded": False,
            },
        }
        for attempt in (1, 2, 3, 4)
    ]


def test_task_delays(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    document, tree = run_workflow(st2, api, "delays")
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": None}
    assert tree == rows(
        ("before", "core.noop", "succeeded"),
        ("later", "core.echo", "succeeded"),
        *[("items_later", "core.echo", "succeeded")] * 3,
    )
    found = children(api, document["id"])
    later = of_task(found, "later")[0]
    assert later["delay"] == 1000
    assert statuses(later) == ["requested", "delayed", "scheduled", "running", "succeeded"]
    assert logged_at(later, "scheduled") - logged_at(later, "requested") >= timedelta(seconds=1)
    # Items: only the first (up to the concurrency of 1) waits.
    items = sorted(of_task(found, "items_later"), key=lambda d: d["context"]["orquesta"]["item_id"])
    assert [d.get("delay") for d in items] == [1000, None, None]
    assert logged_at(items[0], "scheduled") - logged_at(items[0], "requested") >= timedelta(
        seconds=1
    )


def test_st2kv_reads_keys_set_with_the_cli(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    for command in (
        ("key", "set", "orq_plain", "plain-value"),
        ("key", "set", "orq_secret", "s3cr3t-value", "--encrypt"),
        ("key", "set", "orq_user_key", "mine-value", "--scope=user"),
    ):
        result = st2(*command)
        assert result.returncode == 0, output(result)
    document, tree = run_workflow(st2, api, "st2kv")
    assert document["status"] == "succeeded"
    assert document["result"] == {
        "output": {
            "plain": "plain-value",
            "echoed": "plain-value",
            "secret": "s3cr3t-value",
            "sealed_differs": True,
            "mine": "mine-value",
            "absent": "fallback",
            "absent_none": None,
        }
    }
    assert tree == rows(("read", "core.echo", "succeeded"))

    # A key that is missing and has no default fails the task's input rendering.
    document, tree = run_workflow(st2, api, "st2kv", "key=orq_nothing_here")
    assert document["status"] == "failed"
    assert tree == []
    assert document["result"]["errors"][0] == {
        "type": "error",
        "message": "JinjaEvaluationException: Unable to evaluate expression "
        "'{{ st2kv('system.' ~ ctx('key')) }}'. ExpressionEvaluationException: "
        'The key "orq_nothing_here" does not exist in the StackStorm datastore.',
        "task_id": "read",
        "route": 0,
    }
    # No task ended, so the output renders from an empty context, as in Orquesta: every
    # output fails, and the result has none.
    assert document["result"]["output"] is None
    assert [error["message"].rsplit(". ", 1)[1] for error in document["result"]["errors"][1:]] == [
        f'VariableUndefinedError: The variable "{name}" is undefined.'
        for name in (
            "system_name",
            "echoed",
            "secret",
            "sealed_differs",
            "mine",
            "absent",
            "absent_none",
        )
    ]
