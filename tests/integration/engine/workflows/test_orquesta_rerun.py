"""Re-running Orquesta workflows through the official ``st2`` CLI: the whole workflow again, or
``st2 execution re-run --tasks`` from a named task in the same workflow execution (its earlier
tasks' published values kept), and a with-items task with its items reset or, with
``--no-reset``, only its failed items run again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.integration.support.orquesta_cli import (
    children,
    finish,
    module_fixtures,
    of_task,
    printed_tree,
    rows,
    run_workflow,
)
from tests.integration.support.st2cli import St2, output

engine, cli = module_fixtures("orquesta-rerun")


def rerun(st2: St2, execution_id: str, *options: str) -> dict[str, Any]:
    """``st2 execution re-run <id> ...``: the new execution it printed."""
    document, _ = printed_tree(st2("execution", "re-run", execution_id, *options, "-j"))
    assert document["id"] != execution_id
    return document


def workflow_execution(api: httpx.Client, execution_id: str) -> str:
    context = api.get(f"/executions/{execution_id}").json()["context"]
    return str(context["workflow_execution"])


def test_rerun_from_a_task_or_from_the_start(cli: tuple[St2, httpx.Client], tmp_path: Path) -> None:
    st2, api = cli
    exit_code = tmp_path / "exit-code"
    exit_code.write_text("1")
    failed, tree = run_workflow(st2, api, "rerun", f"tempfile={exit_code}")
    assert failed["status"] == "failed"
    assert failed["result"]["output"] == {"finished": None}
    assert [error["task_id"] for error in failed["result"]["errors"]] == ["flaky"]
    assert tree == rows(("prepare", "core.echo", "succeeded"), ("flaky", "core.local", "failed"))

    exit_code.write_text("0")
    from_task = rerun(st2, failed["id"], "--tasks", "flaky")
    from_start = rerun(st2, failed["id"])

    # From the task: the same workflow execution goes on, with what prepare published.
    document, tree = finish(st2, api, from_task["id"])
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"finished": "prepared and finished"}}
    assert tree == rows(("flaky", "core.local", "succeeded"), ("finish", "core.echo", "succeeded"))
    assert workflow_execution(api, from_task["id"]) == workflow_execution(api, failed["id"])
    context = api.get(f"/executions/{from_task['id']}").json()["context"]
    # The CLI resets every task it re-runs unless told --no-reset.
    assert context["re-run"] == {"ref": failed["id"], "tasks": ["flaky"], "reset": ["flaky"]}

    # From the start: a new workflow execution runs every task.
    document, tree = finish(st2, api, from_start["id"])
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"finished": "prepared and finished"}}
    assert [row.task for row in tree] == ["prepare", "flaky", "finish"]
    assert workflow_execution(api, from_start["id"]) != workflow_execution(api, failed["id"])

    # The workflow that was re-run from its task now ended well; its task can run again.
    again = rerun(st2, from_task["id"], "--tasks", "finish")
    document, tree = finish(st2, api, again["id"])
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"finished": "prepared and finished"}}
    assert tree == rows(("finish", "core.echo", "succeeded"))


def test_rerun_refusals(cli: tuple[St2, httpx.Client], tmp_path: Path) -> None:
    st2, api = cli
    exit_code = tmp_path / "exit-code"
    exit_code.write_text("2")
    failed, _ = run_workflow(st2, api, "rerun", f"tempfile={exit_code}")

    # The new execution fails at once; the CLI says so with its exit code.
    unknown = st2("execution", "re-run", failed["id"], "--tasks", "nowhere", "-j")
    assert unknown.returncode == 1, output(unknown)
    unknown_id = json.loads(unknown.stdout)["id"]
    document, tree = finish(st2, api, unknown_id)
    assert document["status"] == "failed"
    assert document["result"] == {
        "errors": [
            {"message": "Unable to rerun workflow because one or more tasks is not found: nowhere"}
        ],
        "output": None,
    }
    assert tree == []

    # StackStorm refuses these before anything runs.
    mismatch = st2("execution", "re-run", failed["id"], "--tasks", "flaky", "--no-reset", "prepare")
    assert mismatch.returncode != 0
    assert "List of tasks to reset does not match the tasks to rerun." in output(mismatch)
    with_parameters = st2("execution", "re-run", failed["id"], "tempfile=/x", "--tasks", "flaky")
    assert with_parameters.returncode != 0
    assert "Parameters override is not supported when re-running task(s) for a workflow." in (
        output(with_parameters)
    )


def items_of(api: httpx.Client, execution_id: str) -> list[tuple[int, str]]:
    """The with-items task's executions under one execution: (item id, status), by item."""
    return sorted(
        (d["context"]["orquesta"]["item_id"], d["status"])
        for d in of_task(children(api, execution_id), "each")
    )


def test_rerun_a_with_items_task_with_and_without_reset(
    cli: tuple[St2, httpx.Client], tmp_path: Path
) -> None:
    st2, api = cli
    reset_file, kept_file = tmp_path / "reset", tmp_path / "kept"
    reset_file.write_text("1")
    kept_file.write_text("1")
    first_reset, _ = run_workflow(st2, api, "rerun_items", f"tempfile={reset_file}")
    first_kept, tree = run_workflow(st2, api, "rerun_items", f"tempfile={kept_file}")
    for document in (first_reset, first_kept):
        assert document["status"] == "failed"
        assert document["result"]["output"] == {"outputs": []}
    assert sorted(row.status for row in tree) == ["failed", "failed", "succeeded", "succeeded"]
    assert items_of(api, first_kept["id"]) == [
        (0, "succeeded"),
        (1, "succeeded"),
        (2, "failed"),
        (3, "failed"),
    ]

    reset_file.write_text("0")
    kept_file.write_text("0")
    reset = rerun(st2, first_reset["id"], "--tasks", "each")
    kept = rerun(st2, first_kept["id"], "--tasks", "each", "--no-reset", "each")

    expected = {"output": {"outputs": ["item-0", "item-1", "item-2", "item-3"]}}
    # Reset: every item runs again.
    document, tree = finish(st2, api, reset["id"])
    assert document["status"] == "succeeded"
    assert document["result"] == expected
    assert tree == rows(*[("each", "core.local", "succeeded")] * 4)
    assert items_of(api, reset["id"]) == [(item, "succeeded") for item in range(4)]

    # No reset: only the failed items run again; the others' results are kept.
    document, tree = finish(st2, api, kept["id"])
    assert document["status"] == "succeeded"
    assert document["result"] == expected
    assert tree == rows(*[("each", "core.local", "succeeded")] * 2)
    assert items_of(api, kept["id"]) == [(2, "succeeded"), (3, "succeeded")]
