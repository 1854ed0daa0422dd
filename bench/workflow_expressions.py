"""Workflow expression evaluations per second with a 1 MB workflow context.

A task transition evaluates a few expressions (``when``, ``publish``) against the workflow
context; its cost must not grow with the context. Each measurement builds a fresh ``Scope`` per
evaluation, as the conductor does per transition, over the same 1 MB of variables:

* ``<% succeeded() %>`` (reads the task status only);
* ``<% ctx(x) %>`` and ``<% ctx().x %>`` (read one small variable beside 1 MB of others);
* ``{{ ctx().x ~ '-' ~ ctx('y') }}`` (Jinja);
* for comparison, the cost orquesta pays per evaluation: converting the whole context to YAQL's
  types (``yaql.language.utils.convert_input_data``).

The goal is 1,000 evaluations per CPU second (1 ms each) for every expression, whatever the
size of the context.

Usage: .venv/bin/python bench/workflow_expressions.py [--seconds 2] [--json FILE]
Needs no servers: expression evaluation is pure computation.
"""

from __future__ import annotations

import argparse
import collections.abc  # noqa: F401  (yaql 3.2 uses collections.abc without importing it)
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from yaql.language.utils import convert_input_data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from poundcake.engine.workflows.expressions import (  # noqa: E402
    CurrentTask,
    Scope,
    evaluate,
)

JINJA = "{{ ctx().x ~ '-' ~ ctx('y') }}"
BASELINE = "orquesta's conversion of the context alone"
# A transition evaluates a handful of expressions and may spend a few ms on them: 1 ms each at most.
GOAL = 1000


class Workflow:
    """The conductor's side of task functions, here a dict of statuses."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses

    def task_status(self, task_id: str, route: int) -> str:
        return self.statuses.get(task_id, "null")

    def task(self, task_id: str, route: int) -> Mapping[str, Any]:
        return {"task_id": task_id, "route": route}


def context_of_one_megabyte() -> dict[str, Any]:
    hosts = [
        {"name": f"host-{index:05d}", "address": f"10.0.{index // 256}.{index % 256}", "up": True}
        for index in range(8000)
    ]
    variables: dict[str, Any] = {
        "hosts": hosts,
        "log": "x" * 520_000,
        "x": "small",
        "y": 42,
        "st2": {"user": "stanley", "action_execution_id": "5f0000000000000000000001"},
    }
    size = len(json.dumps(variables))
    assert size >= 1_000_000, size
    return variables


def rate(evaluate_once: Callable[[], Any], seconds: float) -> tuple[int, float]:
    count, started = 0, time.process_time()
    deadline = started + seconds
    while time.process_time() < deadline:
        evaluate_once()
        count += 1
    return count, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()

    variables = context_of_one_megabyte()
    print(f"workflow context: {len(json.dumps(variables)):,} bytes of JSON")
    workflow = Workflow({"task1": "succeeded"})

    def scope() -> Scope:
        return Scope(variables=variables, current_task=CurrentTask("task1", 0), workflow=workflow)

    cases: dict[str, Callable[[], Any]] = {
        "<% succeeded() %>": lambda: evaluate("<% succeeded() %>", scope()),
        "<% ctx(x) %>": lambda: evaluate("<% ctx(x) %>", scope()),
        "<% ctx().x %>": lambda: evaluate("<% ctx().x %>", scope()),
        JINJA: lambda: evaluate(JINJA, scope()),
        BASELINE: lambda: convert_input_data(variables),
    }
    figures = []
    print(f"  {'evaluation':<46} {'count':>9} {'per CPU s':>12} {'us each':>10}")
    for name, evaluate_once in cases.items():
        count, cpu = rate(evaluate_once, options.seconds)
        print(f"  {name:<46} {count:>9} {count / cpu:>12,.0f} {cpu / count * 1e6:>10.1f}")
        figure: dict[str, Any] = {"figure": f"{name} per CPU s", "value": count / cpu, "unit": "/s"}
        if name != BASELINE:
            figure.update(goal=GOAL, better="higher")
        figures.append(figure)
    if options.json:
        options.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
