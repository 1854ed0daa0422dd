"""An Orquesta workflow definition, read and normalised the way StackStorm's Orquesta reads it.

The file is YAML: ``version``, ``description``, ``input``, ``vars``, ``tasks`` and ``output``.
Short forms are expanded here, once: an action written with inline parameters
(``core.echo message=<% ctx(msg) %>``) becomes the action and its input (the inline form wins
over an ``input`` block, as in Orquesta); ``with: <% ctx(x) %>`` becomes ``with: {items: ...}``;
a ``publish`` string (``a=1 b=<% result() %>``) becomes a list of one-key mappings; a transition
without ``do`` continues (``do: continue``), and ``do: a, b`` names two tasks.

:func:`load_definition` expects a definition that passed inspection
(:mod:`poundcake.engine.workflows.inspection`); it refuses one it cannot read at all.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from poundcake.engine.workflows.expressions import EXPRESSION_PATTERNS
from poundcake.exceptions import ValidationError

# The words a transition's ``do`` may name besides tasks; they cannot be task names.
ENGINE_COMMANDS = ("continue", "fail", "noop", "retry")
DEFAULT_COMMAND = "continue"

_VALUE_FORMS = (
    r"\[.*\]\s*",  # a JSON list
    r"\"[^\"]*\"\s*",  # a double-quoted string
    r"'[^']*'\s*",  # a single-quoted string
    r"[-]?\d*\.\d+",  # a float (before integers)
    r"[-]?\d+",
    r"(?i:true)",
    r"(?i:false)",
    r"null",
    *EXPRESSION_PATTERNS.values(),
)
_INLINE_PARAMETER = re.compile(r"([\w]+)=({})".format("|".join(_VALUE_FORMS)))
_QUOTED = re.compile(r"\"[^\"]*\"\s*|'[^']*'\s*")


class DefinitionError(ValidationError):
    """A workflow definition that cannot be read."""


def parse_inline_parameters(text: Any) -> list[tuple[str, Any]]:
    """``name=value`` pairs from a string, in order; values typed as Orquesta types them.

    Quoted values stay strings (without their quotes); lists, numbers, booleans and ``null``
    are read as JSON; expressions stay as written. A bare word is not a value and is skipped.
    """
    if not isinstance(text, str) or not text:
        return []
    found: list[tuple[str, Any]] = []
    for name, raw in _INLINE_PARAMETER.findall(text):
        value: Any = raw.strip()
        quoted = bool(_QUOTED.search(value))
        value = value.removeprefix('"').removesuffix('"').removeprefix("'").removesuffix("'")
        keep_text = quoted and not (value[:1] == "{" and value[-1:] == "}")
        if not keep_text:
            if value.lower() in ("true", "false"):
                value = value.lower()
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        found.append((name, value))
    return found


@dataclass(frozen=True)
class Transition:
    """One entry of a task's ``next``: its position, condition, publishes and targets."""

    index: int
    when: str | None
    publish: tuple[tuple[str, Any], ...]
    do: tuple[str, ...]


@dataclass(frozen=True)
class Items:
    """A task's ``with``: the text as written, the items expression in it, the names given to
    each item (``x, y in <% ... %>``), and the concurrency."""

    text: str
    expression: str
    keys: tuple[str, ...] | None
    concurrency: int | str | None


@dataclass(frozen=True)
class Retry:
    """A task's ``retry``: when (an expression or None), how often, and the delay between."""

    when: str | None
    count: int | str
    delay: int | str | None


@dataclass(frozen=True)
class TaskDefinition:
    """One task of the workflow."""

    name: str
    action: str | None = None
    input: Any = None
    delay: int | str | None = None
    join: str | int | None = None
    items: Items | None = None
    retry: Retry | None = None
    transitions: tuple[Transition, ...] = ()

    @property
    def is_join(self) -> bool:
        """Whether the task is a barrier for its inbound transitions."""
        return self.join is not None


@dataclass(frozen=True)
class WorkflowDefinition:
    """A whole workflow: its input (name, default, has a default), vars, tasks and output."""

    tasks: Mapping[str, TaskDefinition]
    input: tuple[tuple[str, Any, bool], ...] = ()
    vars: tuple[tuple[str, Any], ...] = ()
    output: tuple[tuple[str, Any], ...] = ()
    description: str | None = None

    def task(self, name: str) -> TaskDefinition:
        """The task called ``name``; an engine command is a task without an action."""
        found = self.tasks.get(name)
        if found is not None:
            return found
        if name in ENGINE_COMMANDS:
            return TaskDefinition(name=name)
        raise DefinitionError(f'Task "{name}" does not exist.')

    def has_task(self, name: str) -> bool:
        """Whether ``name`` is a task of the workflow or an engine command."""
        return name in self.tasks or name in ENGINE_COMMANDS


def read_document(text: str) -> dict[str, Any]:
    """Parse the YAML text of a definition into a mapping, with short forms of ``with`` expanded
    (Orquesta expands them before it checks the schema)."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise DefinitionError(f"The workflow definition is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise DefinitionError("The workflow definition is not a mapping.")
    tasks = document.get("tasks")
    if isinstance(tasks, dict):
        for task in tasks.values():
            if isinstance(task, dict) and isinstance(task.get("with"), str):
                task["with"] = {"items": task["with"]}
    return document


def _one_key_pairs(entries: Any) -> tuple[tuple[str, Any], ...]:
    pairs = []
    for entry in entries or ():
        if isinstance(entry, dict) and len(entry) == 1:
            pairs.append(next(iter(entry.items())))
    return tuple(pairs)


def _input(entries: Any) -> tuple[tuple[str, Any, bool], ...]:
    declared: list[tuple[str, Any, bool]] = []
    for entry in entries or ():
        if isinstance(entry, str):
            declared.append((entry, None, False))
        elif isinstance(entry, dict) and len(entry) == 1:
            name, default = next(iter(entry.items()))
            declared.append((name, default, True))
    return tuple(declared)


def _targets(value: Any) -> tuple[str, ...]:
    if not value:
        return (DEFAULT_COMMAND,)
    if isinstance(value, str):
        return tuple(name.strip() for name in value.split(","))
    return tuple(str(name) for name in value)


def _transition(index: int, document: Mapping[str, Any]) -> Transition:
    publish = document.get("publish")
    pairs = (
        tuple(parse_inline_parameters(publish))
        if isinstance(publish, str)
        else _one_key_pairs(publish)
    )
    when = document.get("when")
    return Transition(
        index=index,
        when=when if isinstance(when, str) else None,
        publish=pairs,
        do=_targets(document.get("do")),
    )


def _items(document: Any) -> Items | None:
    if not isinstance(document, dict):
        return None
    text = str(document.get("items", "")).strip()
    expression, keys = text, None
    if " in " in text:
        names, _, expression = text.partition(" in ")
        keys = tuple(names.replace(" ", "").split(","))
        expression = expression.strip()
    return Items(
        text=text, expression=expression, keys=keys, concurrency=document.get("concurrency")
    )


def _retry(document: Any) -> Retry | None:
    if not isinstance(document, dict) or "count" not in document:
        return None
    return Retry(when=document.get("when"), count=document["count"], delay=document.get("delay"))


def _task(name: str, document: Mapping[str, Any]) -> TaskDefinition:
    action = document.get("action")
    task_input = document.get("input")
    if isinstance(action, str):
        inline = dict(parse_inline_parameters(action))
        if inline:
            action = action[: action.index(" ")]
            task_input = inline
    transitions = document.get("next") or []
    return TaskDefinition(
        name=name,
        action=action if isinstance(action, str) else None,
        input=task_input,
        delay=document.get("delay"),
        join=document.get("join"),
        items=_items(document.get("with")),
        retry=_retry(document.get("retry")),
        transitions=tuple(
            _transition(index, entry)
            for index, entry in enumerate(transitions)
            if isinstance(entry, dict)
        ),
    )


def build_definition(document: Mapping[str, Any]) -> WorkflowDefinition:
    """The normalised definition of a parsed document (see :func:`read_document`)."""
    tasks = document.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise DefinitionError("The workflow definition has no tasks.")
    description = document.get("description")
    return WorkflowDefinition(
        tasks={
            name: _task(str(name), task if isinstance(task, dict) else {})
            for name, task in tasks.items()
        },
        input=_input(document.get("input")),
        vars=_one_key_pairs(document.get("vars")),
        output=_one_key_pairs(document.get("output")),
        description=description if isinstance(description, str) else None,
    )


def load_definition(text: str) -> WorkflowDefinition:
    """Read and normalise a workflow definition from its YAML text."""
    return build_definition(read_document(text))
