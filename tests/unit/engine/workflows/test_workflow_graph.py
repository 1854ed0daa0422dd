"""The task graph of a workflow: start tasks, edges and their keys, the retry command, barriers,
cycles and splits, as Orquesta's composer builds them (the expectations for the first workflow
were checked against orquesta 1.6's ``WorkflowComposer``).
"""

from __future__ import annotations

import pytest

from poundcake.engine.workflows.definition import load_definition
from poundcake.engine.workflows.graph import (
    Edge,
    WorkflowGraph,
    cyclic_nodes,
    inbound_references,
    start_tasks,
    transition_id,
)

# One workflow with most of what the graph knows: a start task leading into the rest, two
# transitions from one task to the same target, a fail command, a target named twice in one
# transition, a task that loops on itself, a retry spec overridden by the retry command, a join,
# an engine command after the join.
WORKFLOW = """
version: 1.0
tasks:
  begin:
    action: core.noop
    next:
      - when: <% succeeded() %>
        publish: a=1
        do: check, side
      - when: <% failed() %>
        do: check
      - do: fail
  side:
    action: core.noop
    next:
      - do: merge, merge
  check:
    action: core.noop
    retry:
      count: 2
      delay: 1
    next:
      - when: <% result().again %>
        do: check
      - when: <% succeeded() %>
        do: merge
      - when: <% failed() %>
        do: retry
  merge:
    join: all
    action: core.noop
    next:
      - do: noop
  spare:
    action: core.noop
    next:
      - do: begin
"""


def graph_of(text: str) -> WorkflowGraph:
    return WorkflowGraph(load_definition(text))


@pytest.fixture(scope="module")
def graph() -> WorkflowGraph:
    return graph_of(WORKFLOW)


def test_start_tasks_are_those_no_transition_leads_to(graph: WorkflowGraph) -> None:
    assert graph.roots == ["spare"]
    assert start_tasks(graph.definition) == ["spare"]
    loop = load_definition("tasks:\n  a:\n    next: [{do: b}]\n  b:\n    next: [{do: a}]\n")
    assert start_tasks(loop) == []
    several = load_definition("tasks:\n  zed:\n    action: core.noop\n  alpha: {}\n")
    assert start_tasks(several) == ["alpha", "zed"]


def test_nodes_are_the_tasks_and_commands_a_start_task_reaches(graph: WorkflowGraph) -> None:
    assert graph.nodes == {"begin", "check", "fail", "merge", "noop", "side", "spare"}
    assert graph.has_task("fail") and not graph.has_task("retry")
    stranded = graph_of("tasks:\n  a: {}\n  b:\n    next: [{do: c}]\n  c:\n    next: [{do: b}]\n")
    assert stranded.nodes == {"a"}


def test_edges_with_keys_criteria_and_transition_index(graph: WorkflowGraph) -> None:
    assert graph.next_edges("begin") == [
        Edge("begin", "check", 0, ("<% succeeded() %>",), 0),
        Edge("begin", "check", 1, ("<% failed() %>",), 1),
        Edge("begin", "fail", 0, (), 2),
        Edge("begin", "side", 0, ("<% succeeded() %>",), 0),
    ]
    second = graph.next_edges("begin")[1]
    assert (second.id, second.back_id) == ("check__t1", "begin__t1")
    assert transition_id("merge", 3) == "merge__t3"
    # "do: merge, merge" is one edge.
    assert graph.next_edges("side") == [Edge("side", "merge", 0, (), 0)]
    assert graph.next_edges("check") == [
        Edge("check", "check", 0, ("<% result().again %>",), 0),
        Edge("check", "merge", 0, ("<% succeeded() %>",), 1),
    ]
    assert graph.next_edges("merge") == [Edge("merge", "noop", 0, (), 0)]
    assert graph.next_edges("noop") == []
    assert sorted(graph.prev_edges("merge"), key=lambda edge: edge.source) == [
        Edge("check", "merge", 0, ("<% succeeded() %>",), 1),
        Edge("side", "merge", 0, (), 0),
    ]
    assert graph.prev_edges("spare") == []


def test_the_retry_command_is_no_edge_and_overrides_a_retry_spec(graph: WorkflowGraph) -> None:
    assert graph.retry == {"check": {"when": "<% failed() %>", "count": 3}}
    spec_only = graph_of(
        """
        tasks:
          flaky:
            action: core.noop
            retry:
              when: <% failed() %>
              count: <% ctx(n) %>
              delay: 2
        """
    )
    assert spec_only.retry == {
        "flaky": {"when": "<% failed() %>", "count": "<% ctx(n) %>", "delay": 2}
    }
    command_only = graph_of("tasks:\n  poll:\n    action: core.noop\n    next: [{do: retry}]\n")
    assert command_only.retry == {"poll": {"when": "<% completed() %>", "count": 3}}
    assert command_only.next_edges("poll") == []


def test_barriers(graph: WorkflowGraph) -> None:
    assert graph.barrier("merge") == "*"
    assert graph.barrier("check") is None and graph.barrier("fail") is None
    assert graph.is_barrier("merge") and not graph.is_barrier("side")
    assert graph.barriers == frozenset({"merge"})
    counted = graph_of(
        """
        tasks:
          fork:
            next: [{do: [a, b, c]}]
          a:
            next: [{do: two}]
          b:
            next: [{do: two}]
          c:
            next: [{do: two}]
          two:
            join: 2
        """
    )
    assert counted.barrier("two") == 2 and counted.is_barrier("two")
    assert counted.barriers == frozenset({"two"})


def test_cycles(graph: WorkflowGraph) -> None:
    assert {name for name in graph.nodes if graph.in_cycle(name)} == {"check"}
    loop = graph_of(
        """
        tasks:
          enter:
            next: [{do: turn}]
          turn:
            next: [{do: decide}]
          decide:
            next:
              - when: <% ctx(more) %>
                do: turn
              - when: <% not ctx(more) %>
                do: leave
          leave: {}
        """
    )
    assert {name for name in loop.nodes if loop.in_cycle(name)} == {"turn", "decide"}


def test_cyclic_nodes_finds_every_cycle_and_self_loop() -> None:
    edges = {
        "a": ["b"],
        "b": ["c", "a"],
        "c": ["d"],
        "d": ["e"],
        "e": ["d", "f"],
        "f": ["f"],
        "g": ["a"],
    }
    assert cyclic_nodes(edges, lambda node: edges.get(node, [])) == {"a", "b", "d", "e", "f"}
    assert cyclic_nodes(["x", "y"], lambda node: ["y"] if node == "x" else []) == set()
    # Deep chains do not recurse.
    chain = {str(i): [str(i + 1)] for i in range(5000)}
    chain["5000"] = ["0"]
    assert len(cyclic_nodes(chain.keys() | {"5000"}, lambda node: chain.get(node, []))) == 5001


def test_splits_are_tasks_more_than_one_transition_leads_to(graph: WorkflowGraph) -> None:
    # check: two transitions of begin and one of itself; merge is a join, so no split.
    assert {name for name in graph.definition.tasks if graph.is_split(name)} == {"check"}
    assert inbound_references(graph.definition, "check") == [
        ("begin", 0),
        ("begin", 1),
        ("check", 0),
    ]
    assert inbound_references(graph.definition, "merge") == [
        ("side", 0),
        ("side", 0),
        ("check", 1),
    ]
    shared = graph_of(
        """
        tasks:
          fork:
            next: [{do: [left, right]}]
          left:
            next: [{do: tail}]
          right:
            next: [{do: tail}]
          tail: {}
        """
    )
    assert shared.is_split("tail") and not shared.is_split("left")
    assert not shared.is_barrier("tail")
