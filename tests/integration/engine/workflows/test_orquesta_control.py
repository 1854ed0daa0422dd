"""Pausing, resuming and canceling Orquesta workflows, and inquiries in them, through the
official ``st2`` CLI.

The workflows wait while a file of the test's exists, so the test acts while a task runs: the
workflow is ``pausing`` or ``canceling`` until the task ends, and a pause, resume or cancel
reaches sub-workflows (down from the parent, or up from a sub-workflow). ``core.ask`` tasks
pause their workflow until ``st2 inquiry respond`` answers them.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.integration.support.orquesta_cli import (
    PACK,
    children,
    execution_tree,
    finish,
    module_fixtures,
    of_task,
    printed_tree,
    rows,
    start,
    statuses,
    wait_for_task,
)
from tests.integration.support.st2cli import St2, eventually, listing, ok, output, wait_for

engine, cli = module_fixtures("orquesta-control")

WAIT = f"{PACK}.wait_file"
PARENT = f"{PACK}.wait_file_parent"


def waiting_on(path: Path) -> str:
    path.write_text("wait")
    return f"tempfile={path}"


def test_pause_then_resume_while_a_task_runs(cli: tuple[St2, httpx.Client], tmp_path: Path) -> None:
    st2, api = cli
    marker = tmp_path / "pause"
    execution_id = start(st2, WAIT, waiting_on(marker))
    wait_for_task(api, execution_id, "waiting", "running")

    document, tree = printed_tree(st2("execution", "pause", execution_id, "-j"))
    assert document["status"] == "pausing"
    # The running task finishes first: the workflow stays pausing until it has.
    assert wait_for(api, execution_id, {"pausing"})["status"] == "pausing"
    _, tree = execution_tree(st2, execution_id)
    assert tree == rows(("waiting", "core.local", "running"))

    marker.unlink()
    wait_for(api, execution_id, {"paused"})
    document, tree = execution_tree(st2, execution_id)
    assert document["status"] == "paused"
    assert tree == rows(("waiting", "core.local", "succeeded"))

    resumed = st2("execution", "resume", execution_id)
    assert resumed.returncode == 0, output(resumed)
    document, tree = finish(st2, api, execution_id)
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"ran": "wait-waited then ran"}}
    assert tree == rows(
        ("waiting", "core.local", "succeeded"), ("after_wait", "core.echo", "succeeded")
    )
    assert statuses(document) == [
        "requested",
        "scheduled",
        "running",
        "pausing",
        "paused",
        "resuming",
        "running",
        "succeeded",
    ]


def test_cancel_while_a_task_runs(cli: tuple[St2, httpx.Client], tmp_path: Path) -> None:
    st2, api = cli
    marker = tmp_path / "cancel"
    execution_id = start(st2, WAIT, waiting_on(marker), "tag=cancel")
    wait_for_task(api, execution_id, "waiting", "running")

    canceled = st2("execution", "cancel", execution_id)
    assert canceled.returncode == 0, output(canceled)
    assert f"action execution with id {execution_id} canceled" in canceled.stdout.lower()
    document = wait_for(api, execution_id, {"canceling"})
    assert document["result"] == {"message": "Action canceled by user.", "user": "st2admin"}

    # The running task is left to end on its own; nothing runs after it.
    marker.unlink()
    wait_for(api, execution_id, {"canceled"})
    document, tree = execution_tree(st2, execution_id)
    assert document["status"] == "canceled"
    assert document["result"] == {"output": {"ran": None}}
    assert tree == rows(("waiting", "core.local", "succeeded"))


def test_pause_and_resume_cascade_down_to_a_subworkflow(
    cli: tuple[St2, httpx.Client], tmp_path: Path
) -> None:
    st2, api = cli
    marker = tmp_path / "cascade"
    execution_id = start(st2, PARENT, waiting_on(marker))
    child = wait_for_task(api, execution_id, "child", "running")
    wait_for_task(api, child["id"], "waiting", "running")

    printed_tree(st2("execution", "pause", execution_id, "-j"))
    wait_for(api, execution_id, {"pausing"})
    wait_for(api, child["id"], {"pausing"})
    _, tree = execution_tree(st2, execution_id)
    assert tree == rows(
        ("child", f"{PACK}.wait_file", "pausing"), (1, "waiting", "core.local", "running")
    )

    marker.unlink()
    wait_for(api, child["id"], {"paused"})
    wait_for(api, execution_id, {"paused"})

    # Resuming the parent resumes its paused sub-workflow.
    resumed = st2("execution", "resume", execution_id)
    assert resumed.returncode == 0, output(resumed)
    document, tree = finish(st2, api, execution_id)
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"finished": "parent saw sub-waited then ran"}}
    assert tree == rows(
        ("child", f"{PACK}.wait_file", "succeeded"),
        (1, "waiting", "core.local", "succeeded"),
        (1, "after_wait", "core.echo", "succeeded"),
        ("finish", "core.echo", "succeeded"),
    )


def test_a_paused_subworkflow_pauses_its_parent_once_nothing_else_runs(
    cli: tuple[St2, httpx.Client], tmp_path: Path
) -> None:
    st2, api = cli
    marker = tmp_path / "from-below"
    execution_id = start(st2, PARENT, waiting_on(marker))
    child = wait_for_task(api, execution_id, "child", "running")
    wait_for_task(api, child["id"], "waiting", "running")

    printed_tree(st2("execution", "pause", child["id"], "-j"))
    wait_for(api, child["id"], {"pausing"})
    assert api.get(f"/executions/{execution_id}").json()["status"] == "running"

    marker.unlink()
    wait_for(api, child["id"], {"paused"})
    wait_for(api, execution_id, {"paused"})

    # Resuming the sub-workflow lets the parent go on too.
    resumed = st2("execution", "resume", child["id"])
    assert resumed.returncode == 0, output(resumed)
    document, tree = finish(st2, api, execution_id)
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"finished": "parent saw sub-waited then ran"}}
    assert [row.task for row in tree] == ["child", "waiting", "after_wait", "finish"]


def test_cancel_cascades_down_from_the_parent_and_up_from_a_subworkflow(
    cli: tuple[St2, httpx.Client], tmp_path: Path
) -> None:
    st2, api = cli
    down_marker, up_marker = tmp_path / "down", tmp_path / "up"
    down = start(st2, PARENT, waiting_on(down_marker))
    up = start(st2, PARENT, waiting_on(up_marker))
    down_child = wait_for_task(api, down, "child", "running")
    up_child = wait_for_task(api, up, "child", "running")
    wait_for_task(api, down_child["id"], "waiting", "running")
    wait_for_task(api, up_child["id"], "waiting", "running")

    assert st2("execution", "cancel", down).returncode == 0
    assert st2("execution", "cancel", up_child["id"]).returncode == 0
    for execution_id in (down, down_child["id"], up, up_child["id"]):
        wait_for(api, execution_id, {"canceling"})

    down_marker.unlink()
    up_marker.unlink()
    for parent, child in ((down, down_child["id"]), (up, up_child["id"])):
        wait_for(api, child, {"canceled"})
        document, tree = finish(st2, api, parent)
        assert document["status"] == "canceled"
        assert document["result"] == {"output": {"finished": None}}
        assert tree == rows(
            ("child", f"{PACK}.wait_file", "canceled"),
            (1, "waiting", "core.local", "succeeded"),
        )
        assert api.get(f"/executions/{child}").json()["result"] == {"output": {"ran": None}}


def test_canceling_a_task_cancels_its_workflow(
    cli: tuple[St2, httpx.Client], tmp_path: Path
) -> None:
    st2, api = cli
    marker = tmp_path / "task"
    execution_id = start(st2, WAIT, waiting_on(marker))
    task = wait_for_task(api, execution_id, "waiting", "running")

    assert st2("execution", "cancel", task["id"]).returncode == 0
    document, tree = finish(st2, api, execution_id)
    assert document["status"] == "canceled"
    assert tree == rows(("waiting", "core.local", "canceled"))
    assert document["result"] == {"output": {"ran": None}}


def items_waiting(tmp_path: Path, count: int) -> tuple[list[Path], str]:
    """``count`` files for wait_items, and its tempfiles parameter."""
    paths = [tmp_path / f"item{index}" for index in range(count)]
    for path in paths:
        path.write_text("wait")
    return paths, "tempfiles=" + json.dumps([str(path) for path in paths])


def item_statuses(api: httpx.Client, execution_id: str) -> list[tuple[int, str]]:
    return sorted(
        (d["context"]["orquesta"]["item_id"], d["status"])
        for d in of_task(children(api, execution_id), "each")
    )


def test_with_items_pause_lets_running_items_end_and_resume_starts_the_rest(
    cli: tuple[St2, httpx.Client], tmp_path: Path
) -> None:
    st2, api = cli
    paths, tempfiles = items_waiting(tmp_path, 4)
    execution_id = start(st2, f"{PACK}.wait_items", tempfiles)
    eventually(lambda: len(item_statuses(api, execution_id)) == 2, "two items running")

    printed_tree(st2("execution", "pause", execution_id, "-j"))
    wait_for(api, execution_id, {"pausing"})
    for path in paths[:2]:
        path.unlink()
    wait_for(api, execution_id, {"paused"})
    # The running items ended; the others were not started.
    assert item_statuses(api, execution_id) == [(0, "succeeded"), (1, "succeeded")]

    assert st2("execution", "resume", execution_id).returncode == 0
    eventually(lambda: len(item_statuses(api, execution_id)) == 4, "the other items running")
    for path in paths[2:]:
        path.unlink()
    document, tree = finish(st2, api, execution_id)
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"waited": ["item0", "item1", "item2", "item3"]}}
    assert tree == rows(*[("each", "core.local", "succeeded")] * 4)


def test_with_items_cancel_lets_running_items_end_and_starts_no_more(
    cli: tuple[St2, httpx.Client], tmp_path: Path
) -> None:
    st2, api = cli
    paths, tempfiles = items_waiting(tmp_path, 4)
    execution_id = start(st2, f"{PACK}.wait_items", tempfiles)
    eventually(lambda: len(item_statuses(api, execution_id)) == 2, "two items running")

    assert st2("execution", "cancel", execution_id).returncode == 0
    wait_for(api, execution_id, {"canceling"})
    for path in paths:
        path.unlink()
    document, tree = finish(st2, api, execution_id)
    assert document["status"] == "canceled"
    assert document["result"] == {"output": {"waited": []}}
    assert tree == rows(*[("each", "core.local", "succeeded")] * 2)
    assert item_statuses(api, execution_id) == [(0, "succeeded"), (1, "succeeded")]


# --- inquiries ----------------------------------------------------------------------------------


def pending_inquiries(st2: St2) -> dict[str, str]:
    """``st2 inquiry list``: each pending inquiry's route by id."""
    return {item["id"]: item["route"] for item in listing(st2("inquiry", "list", "-j"))}


def test_a_question_pauses_the_workflow_until_answered(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    execution_id = start(st2, f"{PACK}.ask_one")
    asked = wait_for_task(api, execution_id, "approve", "pending")
    wait_for(api, execution_id, {"paused"})
    document, tree = execution_tree(st2, execution_id)
    assert document["status"] == "paused"
    assert tree == rows(("before", "core.echo", "succeeded"), ("approve", "core.ask", "pending"))
    assert pending_inquiries(st2)[asked["id"]] == PACK
    shown = ok(st2("inquiry", "get", asked["id"], "-j"))
    assert shown["schema"]["properties"]["approved"] == {"type": "boolean", "required": True}

    refused = st2("inquiry", "respond", asked["id"], "-r", '{"approved": "yes"}')
    assert refused.returncode != 0
    assert "did not pass schema validation" in output(refused)
    answered = st2("inquiry", "respond", asked["id"], "-r", '{"approved": true}')
    assert answered.returncode == 0, output(answered)

    document, tree = finish(st2, api, execution_id)
    assert document["status"] == "succeeded"
    assert document["result"] == {
        "output": {"approved": True, "said": "approved=True because none given"}
    }
    assert tree == rows(
        ("before", "core.echo", "succeeded"),
        ("approve", "core.ask", "succeeded"),
        ("after", "core.echo", "succeeded"),
    )
    assert asked["id"] not in pending_inquiries(st2)


def paused_again(api: httpx.Client, execution_id: str) -> bool:
    """Whether the workflow is paused after having been resumed."""
    document = api.get(f"/executions/{execution_id}").json()
    log = statuses(document)
    return document["status"] == "paused" and "resuming" in log[log.index("paused") :]


def test_parallel_questions_each_need_an_answer(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    execution_id = start(st2, f"{PACK}.ask_parallel")
    ops = wait_for_task(api, execution_id, "ask_ops", "pending")
    dev = wait_for_task(api, execution_id, "ask_dev", "pending")
    wait_for(api, execution_id, {"paused"})
    pending = pending_inquiries(st2)
    assert (pending[ops["id"]], pending[dev["id"]]) == ("ops", "dev")

    assert st2("inquiry", "respond", ops["id"], "-r", '{"ok": true}').returncode == 0
    # The answer resumes the workflow, which pauses again: the other question still waits.
    eventually(lambda: paused_again(api, execution_id), "the workflow paused again")
    document, tree = execution_tree(st2, execution_id)
    assert document["status"] == "paused"
    assert sorted((row.task, row.status) for row in tree) == [
        ("ask_dev", "pending"),
        ("ask_ops", "succeeded"),
        ("start", "succeeded"),
    ]

    assert st2("inquiry", "respond", dev["id"], "-r", '{"ok": false}').returncode == 0
    document, tree = finish(st2, api, execution_id)
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"ops": True, "dev": False}}
    assert sorted(row.task for row in tree) == ["ask_dev", "ask_ops", "both", "start"]
    assert tree[-1] == rows(("both", "core.noop", "succeeded"))[0]
