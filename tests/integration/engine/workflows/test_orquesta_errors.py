"""Orquesta error handling through the official ``st2`` CLI: a failed task handled with
``noop``, ``fail`` or the default ``continue``, and expressions that fail at run time (in a
condition, a publish, a task's input, the output); the result is StackStorm's
``{"errors": [...], "output": ...}`` with the output rendered as far as it can be.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.support.orquesta_cli import (
    PACK,
    children,
    finish,
    module_fixtures,
    of_task,
    rows,
    start,
)
from tests.integration.support.st2cli import St2

engine, cli = module_fixtures("orquesta-errors")


def failed_task(task_id: str, return_code: int) -> dict[str, Any]:
    """The error StackStorm records for a task whose ``core.local`` command failed."""
    return {
        "type": "error",
        "message": "Execution failed. See result for details.",
        "task_id": task_id,
        "result": {
            "failed": True,
            "return_code": return_code,
            "stderr": "",
            "stdout": "",
            "succeeded": False,
        },
    }


def test_a_failed_task_handled_with_noop_fail_or_continue(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    started = {
        mode: start(st2, f"{PACK}.error_handling", "cmd=exit 3", f"mode={mode}")
        for mode in ("noop", "fail", "continue")
    }
    fine = start(st2, f"{PACK}.error_handling", "cmd=true", "mode=fail")

    document, tree = finish(st2, api, started["noop"])
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"note": "ignored exit 3", "mode": "noop"}}
    assert tree == rows(("attempt", "core.local", "failed"))

    # fail: the log task of the same transition still runs, then the workflow fails.
    document, tree = finish(st2, api, started["fail"])
    assert document["status"] == "failed"
    assert document["result"] == {
        "errors": [
            failed_task("attempt", 3),
            {
                "type": "error",
                "message": "Execution failed. See result for details.",
                "task_id": "fail",
            },
        ],
        "output": {"note": "gave up after exit 3", "mode": "fail"},
    }
    assert tree == rows(("attempt", "core.local", "failed"), ("log", "core.echo", "succeeded"))
    log = of_task(children(api, started["fail"]), "log")[0]
    assert log["parameters"] == {"message": "gave up after exit 3"}

    document, tree = finish(st2, api, started["continue"])
    assert document["status"] == "failed"
    assert document["result"] == {
        "errors": [failed_task("attempt", 3)],
        "output": {"note": "went on after exit 3", "mode": "continue"},
    }
    assert tree == rows(("attempt", "core.local", "failed"))

    document, tree = finish(st2, api, fine)
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"note": "all good", "mode": "fail"}}
    assert tree == rows(("attempt", "core.local", "succeeded"))


def yaql_error(expression: str, problem: str, **where: Any) -> dict[str, Any]:
    """An expression error as StackStorm records it in a workflow's errors."""
    return {
        "type": "error",
        "message": f"YaqlEvaluationException: {problem.format(expression=expression)}",
        **where,
    }


UNRESOLVED = "Unable to resolve key 'nothing' in expression '{expression}' from context."
UNEVALUATED = "Unable to evaluate expression '{expression}'. {reason}"
WHEN = '<% succeeded() and (ctx(fault) != "when" or result().nothing) %>'
PUBLISH = '<% switch(ctx(fault) = "publish" => result().nothing, true => result().stdout) %>'
INPUT = '<% switch(ctx(fault) = "input" => ctx(value).nope, true => ctx(value)) %>'
VARS = '<% switch(ctx(fault) = "vars" => ctx(fault).nope, true => ctx(fault)) %>'
OUTPUT = '<% switch(ctx(fault) = "output" => ctx(value).nope, true => ctx(fault)) %>'
NO_PROPERTY = 'NoFunctionRegisteredException: Unknown function "#property#nope"'


def test_expressions_failing_at_run_time(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    started = {
        fault: start(st2, f"{PACK}.expression_errors", f"fault={fault}")
        for fault in ("none", "vars", "when", "publish", "input", "output")
    }
    transition = {"task_id": "first", "route": 0, "task_transition_id": "second__t0"}

    document, tree = finish(st2, api, started["none"])
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"value": "first", "shown": "none"}}
    assert tree == rows(("first", "core.echo", "succeeded"), ("second", "core.echo", "succeeded"))

    # The vars cannot be rendered: the workflow fails before any task.
    document, tree = finish(st2, api, started["vars"])
    assert document["status"] == "failed"
    assert document["result"] == {
        "errors": [yaql_error(VARS, UNEVALUATED.replace("{reason}", NO_PROPERTY))],
        "output": None,
    }
    assert tree == []

    # A condition that fails: no transition is taken; the output renders from the vars.
    document, tree = finish(st2, api, started["when"])
    assert document["status"] == "failed"
    assert document["result"] == {
        "errors": [yaql_error(WHEN, UNRESOLVED, **transition)],
        "output": {"value": "unset", "shown": "when"},
    }
    assert tree == rows(("first", "core.echo", "succeeded"))

    document, tree = finish(st2, api, started["publish"])
    assert document["status"] == "failed"
    assert document["result"] == {
        "errors": [yaql_error(PUBLISH, UNRESOLVED, **transition)],
        "output": {"value": "unset", "shown": "publish"},
    }
    assert tree == rows(("first", "core.echo", "succeeded"))

    # The next task's input cannot be rendered: it never runs, no task ended, and the output
    # renders from an empty context (as in Orquesta), so each output fails too.
    document, tree = finish(st2, api, started["input"])
    assert document["status"] == "failed"
    assert document["result"] == {
        "errors": [
            {
                **yaql_error(INPUT, UNEVALUATED.replace("{reason}", NO_PROPERTY)),
                "task_id": "second",
                "route": 0,
            },
            yaql_error(
                "<% ctx(value) %>",
                UNEVALUATED.replace(
                    "{reason}", 'VariableUndefinedError: The variable "value" is undefined.'
                ),
            ),
            yaql_error(
                OUTPUT,
                UNEVALUATED.replace(
                    "{reason}", 'VariableUndefinedError: The variable "fault" is undefined.'
                ),
            ),
        ],
        "output": None,
    }
    assert tree == rows(("first", "core.echo", "succeeded"))

    # One output fails: the others are kept.
    document, tree = finish(st2, api, started["output"])
    assert document["status"] == "failed"
    assert document["result"] == {
        "errors": [yaql_error(OUTPUT, UNEVALUATED.replace("{reason}", NO_PROPERTY))],
        "output": {"value": "first"},
    }
    assert tree == rows(("first", "core.echo", "succeeded"), ("second", "core.echo", "succeeded"))
