"""Orquesta workflows through the official ``st2`` CLI: sequences, branches, joins, cycles, the
runtime context and sub-workflows.

Real ``st2api``, ``st2auth``, ``st2scheduler``, ``st2actionrunner`` and ``st2workflowengine``
processes run the ``orquesta_tests`` pack (``tests/fixtures/packs/orquesta_tests``). Each test
starts its workflows at once, then reads each back with ``st2 execution get``: the status, the
exact result, and the task tree the CLI prints.
"""

from __future__ import annotations

import httpx

from tests.integration.support.orquesta_cli import (
    PACK,
    children,
    execution_tree,
    finish,
    logged_at,
    module_fixtures,
    moment,
    of_task,
    rows,
    run_workflow,
    start,
)
from tests.integration.support.st2cli import RunningEngine, St2, output

engine, cli = module_fixtures("orquesta-flow")


def test_a_sequence_publishes_and_renders_its_output(cli: tuple[St2, httpx.Client]) -> None:
    st2, _ = cli
    # Once with the CLI's own wait: st2 run prints the execution, then the table of its tasks.
    ran = st2("run", f"{PACK}.sequential", "who=ann")
    assert ran.returncode == 0, output(ran)
    assert "status: succeeded" in ran.stdout
    table = [line.split("|") for line in ran.stdout.splitlines() if line.startswith("| ")]
    assert [(cells[3].strip(), cells[4].strip()) for cells in table] == [
        ("task", "action"),
        ("greet", "core.echo"),
        ("repeat", "core.local"),
        ("count", "core.echo"),
    ]
    execution_id = ran.stdout.split("id: ", 1)[1].split()[0]
    document, tree = execution_tree(st2, execution_id)
    assert document["status"] == "succeeded"
    assert document["parameters"] == {"who": "ann"}
    assert document["result"] == {
        "output": {
            "greeting": "hi ann",
            "repeated": "1|2|",
            "steps": 2,
            "loud": True,
            "length": 6,
            "summary": "hi ann x2",
        }
    }
    assert tree == rows(
        ("greet", "core.echo", "succeeded"),
        ("repeat", "core.local", "succeeded"),
        ("count", "core.echo", "succeeded"),
    )


def test_transitions_branch_on_status_and_result(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    left = start(st2, f"{PACK}.branching", "cmd=echo left")
    right = start(st2, f"{PACK}.branching", "cmd=echo straight")
    remedy = start(st2, f"{PACK}.branching", "cmd=exit 5")

    document, tree = finish(st2, api, left)
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"path": "left", "recorded": "left done"}}
    # The action-less task that records the path runs no action: it has no row.
    assert tree == rows(
        ("decide", "core.local", "succeeded"), ("go_left", "core.echo", "succeeded")
    )

    document, tree = finish(st2, api, right)
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"path": "right", "recorded": "right done"}}
    assert tree == rows(
        ("decide", "core.local", "succeeded"), ("go_right", "core.echo", "succeeded")
    )
    echoed = of_task(children(api, right), "go_right")
    assert echoed[0]["parameters"] == {"message": "went right after straight"}

    # A failed task whose failure a transition handles: the workflow succeeds.
    document, tree = finish(st2, api, remedy)
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"path": "remedy", "recorded": "remedy done"}}
    assert tree == rows(("decide", "core.local", "failed"), ("remedy", "core.echo", "succeeded"))
    echoed = of_task(children(api, remedy), "remedy")
    assert echoed[0]["parameters"] == {"message": "remedied exit 5"}


def test_join_all_waits_for_every_branch(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    document, tree = run_workflow(st2, api, "join_all")
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"joined": "r+g+bb"}}
    assert sorted(row.task for row in tree) == [
        "blue_one",
        "blue_two",
        "fork",
        "gather",
        "green",
        "red",
    ]
    assert tree[0].task == "fork" and tree[-1].task == "gather"
    assert {row.status for row in tree} == {"succeeded"}
    found = children(api, document["id"])
    gather = of_task(found, "gather")
    assert len(gather) == 1
    last_branch = max(
        moment(of_task(found, task)[0]["end_timestamp"]) for task in ("red", "green", "blue_two")
    )
    assert moment(gather[0]["start_timestamp"]) >= last_branch


def test_join_on_a_count(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    counted = start(st2, f"{PACK}.join_count")
    unreachable = start(st2, f"{PACK}.join_count", "skip=true", "slow=true")

    document, tree = finish(st2, api, counted)
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"early": "joined early"}}
    found = children(api, counted)
    joined = of_task(found, "two_of_three")
    sluggish = of_task(found, "sluggish")[0]
    # The join ran once two branches had arrived, while the slowest still ran; as in Orquesta,
    # the third arrival satisfies the count again and the join runs once more.
    assert len(joined) == 2
    assert moment(joined[0]["start_timestamp"]) < moment(sluggish["end_timestamp"])
    assert moment(joined[1]["start_timestamp"]) >= moment(sluggish["end_timestamp"])
    assert [row.task for row in tree].count("two_of_three") == 2

    # Two branches succeed without leading to the join: it can never be satisfied.
    document, tree = finish(st2, api, unreachable)
    assert document["status"] == "failed"
    assert document["result"] == {
        "errors": [
            {
                "type": "error",
                "message": 'UnreachableJoinError: The join task|route "two_of_three|0" is '
                "partially satisfied but unreachable.",
                "task_id": "two_of_three",
                "route": 0,
            }
        ],
        "output": {"early": None},
    }
    assert sorted(row.task for row in tree) == ["brisk", "fork", "quick", "sluggish"]
    assert {row.status for row in tree} == {"succeeded"}


def test_a_cycle_runs_until_its_condition(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    three = start(st2, f"{PACK}.cycle")
    once = start(st2, f"{PACK}.cycle", "limit=1")

    document, tree = finish(st2, api, three)
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"turns": 3, "seen": ["turn 0", "turn 1", "turn 2"]}}
    assert tree == rows(
        ("enter", "core.noop", "succeeded"),
        ("turn", "core.echo", "succeeded"),
        ("turn", "core.echo", "succeeded"),
        ("turn", "core.echo", "succeeded"),
        ("leave", "core.noop", "succeeded"),
    )

    document, tree = finish(st2, api, once)
    assert document["result"] == {"output": {"turns": 1, "seen": ["turn 0"]}}
    assert [row.task for row in tree] == ["enter", "turn", "leave"]


def test_the_runtime_context_names_user_execution_and_workflow(
    cli: tuple[St2, httpx.Client], engine: RunningEngine
) -> None:
    st2, api = cli
    document, tree = run_workflow(st2, api, "runtime_context")
    assert document["status"] == "succeeded"
    # st2 execution get -j leaves the context out; the API has it.
    context = api.get(f"/executions/{document['id']}").json()["context"]
    assert document["result"] == {
        "output": {
            "shown": f"st2admin ran {PACK}.runtime_context",
            "user": "st2admin",
            "action": f"{PACK}.runtime_context",
            "runner": "orquesta",
            "pack": PACK,
            "api_url": engine.api_url,
            "action_execution_id": document["id"],
            "workflow_execution_id": context["workflow_execution"],
        }
    }
    assert tree == rows(("show", "core.echo", "succeeded"))
    task = children(api, document["id"])[0]
    assert task["parent"] == document["id"]
    assert task["context"]["parent"]["execution_id"] == document["id"]
    assert task["context"]["orquesta"]["workflow_execution_id"] == context["workflow_execution"]
    assert task["context"]["orquesta"]["task_name"] == "show"
    assert task["context"]["orquesta"]["task_route"] == 0


def test_subworkflows_of_both_kinds_return_their_results(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    document, tree = run_workflow(st2, api, "subworkflows", "who=kid")
    assert document["status"] == "succeeded"
    assert document["result"] == {
        "output": {
            "from_orquesta": "hi kid x3",
            "from_chain": "HI KID X3",
            "chain_tasks": ["upper", "confirm"],
        }
    }
    assert tree == rows(
        ("orquesta_child", f"{PACK}.sequential", "succeeded"),
        (1, "greet", "core.echo", "succeeded"),
        (1, "repeat", "core.local", "succeeded"),
        (1, "count", "core.echo", "succeeded"),
        ("chain_child", f"{PACK}.chain_child", "succeeded"),
        (1, "upper", "core.local", "succeeded"),
        (1, "confirm", "core.echo", "succeeded"),
    )
    found = children(api, document["id"])
    child = of_task(found, "orquesta_child")[0]
    assert child["parameters"] == {"who": "kid", "times": 3}
    assert child["result"]["output"]["repeated"] == "1|2|3|"
    chain = of_task(found, "chain_child")[0]
    assert chain["parameters"] == {"word": "hi kid x3"}
    assert chain["result"]["published"] == {"shouted": "HI KID X3"}
    assert logged_at(chain, "running") >= moment(child["end_timestamp"])
