"""The task graph of a workflow: which tasks start it, which transitions lead where.

Tasks are nodes and every ``do`` target of a transition is an edge from the task, so one task
may have several edges to the same target (one per transition naming it); an edge's ``key``
counts them per pair, and ``<target>__t<key>`` identifies it in a task's record of transitions
taken, as Orquesta does. The graph holds what a start task can reach; engine commands
(``continue``, ``fail``, ``noop``) are nodes too, while ``do: retry`` is no edge: it gives the task
a retry of three attempts. A ``join`` makes its task a barrier (``*`` for all inbound tasks).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from poundcake.engine.workflows.definition import ENGINE_COMMANDS, WorkflowDefinition

RETRY_COMMAND = "retry"
ALL_INBOUND = "*"
# ``do: retry`` retries the task when it completes, up to three times, as Orquesta does.
RETRY_COMMAND_DEFAULT_WHEN = "<% completed() %>"
RETRY_COMMAND_COUNT = 3


@dataclass(frozen=True)
class Edge:
    """One transition from ``source`` to ``target``: the ``key``-th between them, the
    conditions it needs, and ``ref``, the index of the transition in the source's ``next``."""

    source: str
    target: str
    key: int
    criteria: tuple[str, ...]
    ref: int

    @property
    def id(self) -> str:
        """The transition's name in the source task's record: ``<target>__t<key>``."""
        return transition_id(self.target, self.key)

    @property
    def back_id(self) -> str:
        """The transition's name from the target's side: ``<source>__t<key>``."""
        return transition_id(self.source, self.key)


def transition_id(task_id: str, key: int) -> str:
    """Orquesta's name for a transition: the task's name and the edge key."""
    return f"{task_id}__t{key}"


class WorkflowGraph:
    """The graph of a :class:`WorkflowDefinition`; built once per definition, read-only."""

    def __init__(self, definition: WorkflowDefinition) -> None:
        self.definition = definition
        self.roots: list[str] = start_tasks(definition)
        self.nodes: set[str] = set()
        self.retry: dict[str, dict[str, Any]] = {}
        self._next: dict[str, list[Edge]] = {}
        self._prev: dict[str, list[Edge]] = {}
        self._compose()

    def _compose(self) -> None:
        queue = deque(self.roots)
        self.nodes.update(self.roots)
        while queue:
            name = queue.popleft()
            task = self.definition.task(name)
            if task.retry is not None:
                self.retry[name] = {
                    "when": task.retry.when,
                    "count": task.retry.count,
                    "delay": task.retry.delay,
                }
            for transition in task.transitions:
                for target in transition.do:
                    if target == RETRY_COMMAND:
                        self.retry[name] = {
                            "when": transition.when or RETRY_COMMAND_DEFAULT_WHEN,
                            "count": RETRY_COMMAND_COUNT,
                        }
                        continue
                    criteria = (transition.when,) if transition.when else ()
                    self._add_edge(name, target, criteria, transition.index)
                    if target not in self.nodes:
                        self.nodes.add(target)
                        queue.append(target)
        for edges in self._next.values():
            edges.sort(key=lambda edge: (edge.target, edge.key))

    def _add_edge(self, source: str, target: str, criteria: tuple[str, ...], ref: int) -> None:
        existing = [edge for edge in self._next.get(source, []) if edge.target == target]
        if any(edge.criteria == criteria and edge.ref == ref for edge in existing):
            return
        edge = Edge(source, target, len(existing), criteria, ref)
        self._next.setdefault(source, []).append(edge)
        self._prev.setdefault(target, []).append(edge)

    def has_task(self, name: str) -> bool:
        """Whether ``name`` is a node of the graph."""
        return name in self.nodes

    def next_edges(self, name: str) -> list[Edge]:
        """The task's outbound transitions, by target name then key."""
        return self._next.get(name, [])

    def prev_edges(self, name: str) -> list[Edge]:
        """The transitions into the task."""
        return self._prev.get(name, [])

    def barrier(self, name: str) -> str | int | None:
        """``*`` for ``join: all``, the count for ``join: <n>``, None when not a join."""
        if name not in self.definition.tasks:
            return None
        join = self.definition.tasks[name].join
        if join is None:
            return None
        return ALL_INBOUND if join == "all" else join

    def is_barrier(self, name: str) -> bool:
        """Whether the task waits for its inbound transitions."""
        barrier = self.barrier(name)
        return barrier is not None and barrier != ""

    @cached_property
    def barriers(self) -> frozenset[str]:
        """Every barrier task of the graph."""
        return frozenset(name for name in self.nodes if self.is_barrier(name))

    @cached_property
    def _cyclic(self) -> frozenset[str]:
        return frozenset(cyclic_nodes(self.nodes, self._successors))

    def _successors(self, name: str) -> Iterable[str]:
        return (edge.target for edge in self.next_edges(name))

    def in_cycle(self, name: str) -> bool:
        """Whether the task lies on a cycle of the graph."""
        return name in self._cyclic

    def is_split(self, name: str) -> bool:
        """Whether the task is not a join and more than one transition of the definition leads
        to it: each arrival then runs it on a route of its own."""
        if name in self.definition.tasks and self.definition.tasks[name].is_join:
            return False
        return len(inbound_references(self.definition, name)) > 1


def inbound_references(definition: WorkflowDefinition, name: str) -> list[tuple[str, int]]:
    """Every (task, transition index) of the definition whose ``do`` names ``name``."""
    found: list[tuple[str, int]] = []
    for source, task in definition.tasks.items():
        for transition in task.transitions:
            found.extend((source, transition.index) for target in transition.do if target == name)
    return found


def start_tasks(definition: WorkflowDefinition) -> list[str]:
    """The tasks no transition leads to, by name."""
    named = {
        target for task in definition.tasks.values() for t in task.transitions for target in t.do
    }
    return sorted(name for name in definition.tasks if name not in named)


def cyclic_nodes(nodes: Iterable[str], successors: Any) -> set[str]:
    """The nodes that lie on a cycle (strongly connected components of two or more nodes, or a
    node with an edge to itself), found with Tarjan's algorithm without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cyclic: set[str] = set()
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work: list[tuple[str, Any]] = [(root, iter(list(successors(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(list(successors(child)))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in set(successors(node)):
                    cyclic.update(component)
    return cyclic


__all__ = ["ENGINE_COMMANDS", "Edge", "WorkflowGraph", "cyclic_nodes", "start_tasks"]
