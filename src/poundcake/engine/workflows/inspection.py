"""Inspecting a workflow definition before it runs, with Orquesta's checks and messages.

Four checks come from Orquesta and find definitions that can never run as written:

* ``syntax``: the document against Orquesta's schema (Draft 4);
* ``semantic``: reserved task names, no task to start with, transitions to tasks that do not
  exist, join tasks Orquesta cannot place, with-items tasks without an action, and (ours) tasks
  no start task leads to and join tasks fewer tasks lead to than they wait for (none, or
  fewer than their count);
* ``expression``: YAQL and Jinja that do not parse;
* ``context``: variables referenced before anything assigns them.

A fifth, ``content``, is StackStorm's and depends on what is registered: each task's action
exists and its input has what the action requires and nothing it does not know. Every problem
is a dict in StackStorm's shape (``type``, ``message``, ``spec_path``, ``schema_path``, and for
expression and context problems ``language`` and ``expression``), sorted by type and schema path
as StackStorm sorts them.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jsonschema import Draft4Validator

from poundcake.engine.workflows.definition import (
    ENGINE_COMMANDS,
    DefinitionError,
    TaskDefinition,
    WorkflowDefinition,
    build_definition,
    read_document,
)
from poundcake.engine.workflows.expressions import (
    EXPRESSION_PATTERNS,
    extract_variables,
    has_expressions,
    validate,
)
from poundcake.engine.workflows.graph import inbound_references, start_tasks

Problem = dict[str, Any]
# What a content check needs to know of an action: its merged parameter schema, or None when
# the action is not registered.
ActionParameters = Callable[[str], Mapping[str, Any] | None]

TASK_PATH = "properties.tasks.patternProperties.^\\w+$"
_TASK_NAME = r"^\w+$"

_NONEMPTY_STRING = {"type": "string", "minLength": 1}
_POSITIVE_INTEGER = {"type": "integer", "minimum": 0}
_ANY_NULLABLE = {
    "anyOf": [
        {"type": kind}
        for kind in ("null", "array", "boolean", "integer", "number", "object", "string")
    ]
}
_ONE_KEY_DICT = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "patternProperties": {_TASK_NAME: _ANY_NULLABLE},
}
_ONE_KEY_DICT_LIST = {"type": "array", "items": _ONE_KEY_DICT, "uniqueItems": True, "minItems": 1}
_STRING_OR_POSITIVE_INTEGER = {"oneOf": [_NONEMPTY_STRING, _POSITIVE_INTEGER]}
_STATEMENT = "|".join(EXPRESSION_PATTERNS[name] for name in ("jinja", "yaql"))
_ITEMS_PATTERN = (
    rf"^(\s+)?({_STATEMENT})(\s+)?$|^(\s+)?((\w+,\s?|\s+)+)?(\w+)\s+in\s+({_STATEMENT})(\s+)?$"
)

# Orquesta's schema of a workflow definition, as a JSON schema document (Draft 4).
WORKFLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "vars": _ONE_KEY_DICT_LIST,
        "input": {
            "type": "array",
            "items": {"oneOf": [_NONEMPTY_STRING, _ONE_KEY_DICT]},
            "uniqueItems": True,
            "minItems": 1,
        },
        "output": _ONE_KEY_DICT_LIST,
        "tasks": {
            "type": "object",
            "minProperties": 1,
            "patternProperties": {
                _TASK_NAME: {
                    "type": "object",
                    "properties": {
                        "delay": _STRING_OR_POSITIVE_INTEGER,
                        "join": {"oneOf": [{"enum": ["all"]}, _POSITIVE_INTEGER]},
                        "with": {
                            "type": "object",
                            "properties": {
                                "items": {
                                    "type": "string",
                                    "minLength": 1,
                                    "pattern": _ITEMS_PATTERN,
                                },
                                "concurrency": _STRING_OR_POSITIVE_INTEGER,
                            },
                            "additionalProperties": False,
                        },
                        "action": _NONEMPTY_STRING,
                        "input": {
                            "oneOf": [
                                _NONEMPTY_STRING,
                                {
                                    "type": "object",
                                    "minProperties": 1,
                                    "patternProperties": {_TASK_NAME: _ANY_NULLABLE},
                                },
                            ]
                        },
                        "retry": {
                            "type": "object",
                            "properties": {
                                "when": _NONEMPTY_STRING,
                                "count": _STRING_OR_POSITIVE_INTEGER,
                                "delay": _STRING_OR_POSITIVE_INTEGER,
                            },
                            "required": ["count"],
                            "additionalProperties": False,
                        },
                        "next": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "when": _NONEMPTY_STRING,
                                    "publish": {"oneOf": [_NONEMPTY_STRING, _ONE_KEY_DICT_LIST]},
                                    "do": {
                                        "oneOf": [
                                            _NONEMPTY_STRING,
                                            {
                                                "type": "array",
                                                "items": _NONEMPTY_STRING,
                                                "uniqueItems": True,
                                                "minItems": 1,
                                            },
                                        ]
                                    },
                                },
                                "additionalProperties": False,
                            },
                        },
                    },
                    "additionalProperties": False,
                }
            },
        },
        "name": _NONEMPTY_STRING,
        "version": {
            "anyOf": [_NONEMPTY_STRING, _POSITIVE_INTEGER, {"type": "number", "minimum": 0.0}],
            "enum": ["1.0", 1.0],
        },
        "description": _NONEMPTY_STRING,
        "tags": {"type": "array", "items": _NONEMPTY_STRING, "uniqueItems": True, "minItems": 1},
    },
    "required": ["tasks"],
    "additionalProperties": False,
}
_VALIDATOR = Draft4Validator(WORKFLOW_SCHEMA)

# The keys of StackStorm's runtime context every workflow can read (``ctx(st2)``).
RUNTIME_CONTEXT_KEYS = ("st2", "parent")


def _path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _problem(kind: str, message: str, spec_path: str | None, schema_path: str | None) -> Problem:
    return {"type": kind, "message": message, "spec_path": spec_path, "schema_path": schema_path}


# --- syntax -----------------------------------------------------------------------------------


def inspect_syntax(document: Mapping[str, Any]) -> list[Problem]:
    """The document against Orquesta's schema."""
    return [
        _problem(
            "syntax",
            # Orquesta unescapes the validator's message (its reprs double backslashes).
            error.message.encode("utf-8").decode("unicode_escape"),
            _path(error.absolute_path) or None,
            _path(error.absolute_schema_path) or None,
        )
        for error in _VALIDATOR.iter_errors(document)
    ]


# --- semantics --------------------------------------------------------------------------------


def _task_problem(message: str, name: str) -> Problem:
    return _problem("semantic", message, f"tasks.{name}", TASK_PATH)


def _reserved_names(definition: WorkflowDefinition) -> list[Problem]:
    return [
        _task_problem(f'The task name "{name}" is reserved with special function.', name)
        for name in definition.tasks
        if name in ENGINE_COMMANDS
    ]


def _no_start(definition: WorkflowDefinition) -> list[Problem]:
    if definition.tasks and not start_tasks(definition):
        message = (
            "Unable to identify any tasks to start the workflow. If the workflow has a loop, "
            "please add a task that serves as an entry point (or lead) into the loop."
        )
        return [_problem("semantic", message, "tasks", "properties.tasks")]
    return []


def _undefined_targets(definition: WorkflowDefinition) -> list[Problem]:
    problems = []
    for name in reachable_tasks(definition):
        for transition in definition.task(name).transitions:
            for target in transition.do:
                if not definition.has_task(target):
                    problems.append(
                        _problem(
                            "semantic",
                            f'The task "{target}" is not defined.',
                            f"tasks.{name}.next[{transition.index}].do",
                            f"{TASK_PATH}.properties.next.items.properties.do",
                        )
                    )
    return problems


def reachable_tasks(definition: WorkflowDefinition) -> list[str]:
    """The defined tasks a start task leads to (start tasks included), in the order found."""
    queue = deque(start_tasks(definition))
    seen: list[str] = []
    while queue:
        name = queue.popleft()
        if name in seen or name not in definition.tasks:
            continue
        seen.append(name)
        for transition in definition.tasks[name].transitions:
            queue.extend(target for target in transition.do if target not in seen)
    return seen


def _unreachable(definition: WorkflowDefinition) -> list[Problem]:
    if not start_tasks(definition):
        return []
    reached = set(reachable_tasks(definition))
    return [
        _task_problem(
            f'The task "{name}" is unreachable: no transition from a task the workflow starts '
            "with leads to it.",
            name,
        )
        for name in definition.tasks
        if name not in reached
    ]


def _is_split(definition: WorkflowDefinition, name: str, cyclic: frozenset[str]) -> bool:
    task = definition.tasks.get(name)
    if task is not None and task.is_join:
        return False
    return len(inbound_references(definition, name)) > 1 and name not in cyclic


def _unplaceable_joins(definition: WorkflowDefinition) -> list[Problem]:
    """Join tasks whose inbound branches come from different forks of a reused task: Orquesta
    cannot tell at which level they should join."""
    cyclic = _definition_cycles(definition)
    splits: dict[str, set[str]] = {}
    previous: dict[str, set[str]] = {}
    seen_pairs: dict[tuple[str, str], set[str]] = {}
    queue: deque[tuple[str | None, str, list[str]]] = deque(
        (None, name, []) for name in start_tasks(definition)
    )
    while queue:
        before, name, path = queue.popleft()
        if name not in definition.tasks:
            continue
        path = list(path)
        if _is_split(definition, name, cyclic):
            path.append(name)
        splits[name] = splits.get(name, set()) | set(path)
        if before:
            previous.setdefault(name, set()).add(before)
        for target in _targets(definition, name):
            if target in splits and target in cyclic:
                continue
            known = seen_pairs.get((name, target))
            if known is None:
                queue.append((name, target, path))
                seen_pairs[(name, target)] = set(path)
            elif not set(path) <= known:
                queue.append((name, target, path))
                known.update(path)
    problems = []
    for name, task in definition.tasks.items():
        if not task.is_join or name not in splits:
            continue
        if any(splits[name] != splits.get(source, set()) for source in previous.get(name, ())):
            message = (
                f'The join task "{name}" is unreachable. A join task is determined to be '
                "unreachable if there are nested forks from multi-referenced tasks that join on "
                "the said task. This is ambiguous to the workflow engine because it does not "
                "know at which level should the join occurs."
            )
            problems.append(_task_problem(message, name))
    return problems


def _targets(definition: WorkflowDefinition, name: str) -> list[str]:
    targets = [
        target for transition in definition.task(name).transitions for target in transition.do
    ]
    return sorted(targets)


def _definition_cycles(definition: WorkflowDefinition) -> frozenset[str]:
    from poundcake.engine.workflows.graph import cyclic_nodes

    def successors(name: str) -> list[str]:
        return [t for t in _targets(definition, name) if t in definition.tasks]

    return frozenset(cyclic_nodes(definition.tasks, successors))


def _actionless_items(definition: WorkflowDefinition) -> list[Problem]:
    return [
        _task_problem("The action property is required for with items task.", name)
        for name, task in definition.tasks.items()
        if task.items is not None and not task.action
    ]


def _unfed_joins(definition: WorkflowDefinition) -> list[Problem]:
    """(Ours) join tasks no task leads to, or that wait for more tasks than lead to them: the
    first would run as a start task with nothing to join, the second would never run."""
    problems = []
    for name, task in definition.tasks.items():
        valid = task.join == "all" or (isinstance(task.join, int) and task.join > 0)
        if not valid:  # a syntax problem already
            continue
        inbound = {source for source, _ in inbound_references(definition, name)}
        if not inbound:
            message = f'The join task "{name}" has no inbound task: no transition leads to it.'
        elif isinstance(task.join, int) and task.join > len(inbound):
            message = (
                f'The join task "{name}" waits for {task.join} inbound tasks but only '
                f"{len(inbound)} lead to it ({', '.join(sorted(inbound))})."
            )
        else:
            continue
        problems.append(
            _problem("semantic", message, f"tasks.{name}.join", f"{TASK_PATH}.properties.join")
        )
    return problems


def inspect_semantics(definition: WorkflowDefinition) -> list[Problem]:
    """Task names, start tasks, transitions, joins and with-items tasks."""
    return [
        *_reserved_names(definition),
        *_no_start(definition),
        *_undefined_targets(definition),
        *_unplaceable_joins(definition),
        *_unfed_joins(definition),
        *_actionless_items(definition),
        *_unreachable(definition),
    ]


# --- expressions ------------------------------------------------------------------------------


def _expression_problems(value: Any, spec_path: str, schema_path: str) -> list[Problem]:
    problems = []
    for found in validate(value):
        problems.append(
            {
                "type": "expression",
                "language": found.get("type"),
                "expression": found.get("expression"),
                "message": found.get("message"),
                "spec_path": spec_path,
                "schema_path": schema_path,
            }
        )
    return problems


def _task_values(task: TaskDefinition, document: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A task's values that may hold expressions, with their property paths."""
    values: list[tuple[str, Any]] = [
        ("delay", task.delay),
        ("join", task.join),
        ("action", task.action),
        ("input", task.input),
    ]
    raw_with = document.get("with")
    if isinstance(raw_with, dict):
        values += [
            ("with.items", raw_with.get("items")),
            ("with.concurrency", raw_with.get("concurrency")),
        ]
    raw_retry = document.get("retry")
    if isinstance(raw_retry, dict):
        values += [(f"retry.{key}", raw_retry.get(key)) for key in ("when", "count", "delay")]
    return values


def inspect_expressions(
    definition: WorkflowDefinition, document: Mapping[str, Any]
) -> list[Problem]:
    """Every expression that does not parse, with where it is."""
    problems: list[Problem] = []
    for section in ("vars", "input", "output"):
        problems += _expression_problems(document.get(section), section, f"properties.{section}")
    found = document.get("tasks")
    raw_tasks: Mapping[str, Any] = found if isinstance(found, dict) else {}
    for name, task in definition.tasks.items():
        entry = raw_tasks.get(name)
        raw: Mapping[str, Any] = entry if isinstance(entry, dict) else {}
        for prop, value in _task_values(task, raw):
            spec_path = f"tasks.{name}.{prop}"
            schema_path = TASK_PATH + "".join(f".properties.{part}" for part in prop.split("."))
            problems += _expression_problems(value, spec_path, schema_path)
        for transition in task.transitions:
            base = f"tasks.{name}.next[{transition.index}]"
            schema = f"{TASK_PATH}.properties.next.items.properties"
            problems += _expression_problems(transition.when, f"{base}.when", f"{schema}.when")
            publish = [{key: value} for key, value in transition.publish]
            problems += _expression_problems(publish, f"{base}.publish", f"{schema}.publish")
    return problems


# --- context ----------------------------------------------------------------------------------


class _ContextInspection:
    """Walks the workflow in Orquesta's order and finds references to unassigned variables."""

    def __init__(self, definition: WorkflowDefinition, known: Iterable[str]) -> None:
        self.definition = definition
        self.rolling: set[str] = set(known)
        self.problems: list[Problem] = []

    def _check(self, value: Any, spec_path: str, schema_path: str, assigned: set[str]) -> None:
        for language, statement, name in extract_variables(value):
            messages = []
            if name.startswith("__"):
                messages.append(
                    f'Variable "{name}" that is prefixed with double underscores is considered '
                    "a private variable and cannot be referenced."
                )
            if name not in assigned:
                messages.append(f'Variable "{name}" is referenced before assignment.')
            for message in messages:
                problem = {
                    "type": "context",
                    "language": language,
                    "expression": statement,
                    "message": message,
                    "spec_path": spec_path,
                    "schema_path": schema_path,
                }
                if problem not in self.problems:
                    self.problems.append(problem)

    def assignments(
        self, spec_path: str, schema_path: str, entries: list[Any], assigned: set[str]
    ) -> set[str]:
        """``input``, ``vars``, ``output`` or a ``publish``: each entry may read what the
        entries before it assigned; return what is assigned after all of them."""
        assigned = set(assigned)
        for index, entry in enumerate(entries):
            self._check(entry, f"{spec_path}[{index}]", schema_path, assigned)
            if isinstance(entry, str):
                assigned.add(entry)
            elif isinstance(entry, dict):
                assigned.update(str(key) for key in entry)
        return assigned

    def task(self, name: str, assigned: set[str]) -> None:
        task = self.definition.task(name)
        path, schema = f"tasks.{name}", f"{TASK_PATH}.properties"
        values: list[tuple[str, Any]] = [("delay", task.delay)]
        if task.items is not None:
            values += [
                ("with.items", task.items.text),
                ("with.concurrency", task.items.concurrency),
            ]
        values += [("action", task.action), ("input", task.input)]
        for prop, value in values:
            if value is None or value == "":
                continue
            schema_path = f"{schema}." + ".properties.".join(prop.split("."))
            self._check(value, f"{path}.{prop}", schema_path, assigned)

    def transition_assigned(self, name: str, index: int, assigned: set[str]) -> set[str]:
        transition = self.definition.task(name).transitions[index]
        base = f"tasks.{name}.next[{index}]"
        schema = f"{TASK_PATH}.properties.next.items.properties"
        if transition.when:
            self._check(transition.when, f"{base}.when", f"{schema}.when", assigned)
        publish = [{key: value} for key, value in transition.publish]
        return self.assignments(f"{base}.publish", f"{schema}.publish", publish, assigned)

    def tasks(self) -> None:
        traversed: list[str] = []
        join_context: dict[str, set[str]] = {}
        queued_with: dict[str, set[str]] = {}
        queue: deque[tuple[str, set[str] | None]] = deque(
            (name, set(self.rolling)) for name in start_tasks(self.definition)
        )
        while queue:
            name, context = queue.popleft()
            traversed.append(name)
            assigned = set(context) if context else set(join_context.get(name, set()))
            self.task(name, assigned)
            self.rolling |= assigned
            for transition in self.definition.task(name).transitions:
                branch = self.transition_assigned(name, transition.index, assigned)
                for target in transition.do:
                    if target in traversed or not self.definition.has_task(target):
                        continue
                    if not self.definition.task(target).is_join:
                        if queued_with.get(target) != branch:
                            queue.append((target, branch))
                            queued_with[target] = branch
                    else:
                        join_context[target] = join_context.get(target, set()) | branch
                        queue.append((target, None))


def inspect_context(definition: WorkflowDefinition, known: Iterable[str]) -> list[Problem]:
    """Variables referenced before assignment, walking input, vars, the tasks, then output."""
    walk = _ContextInspection(definition, known)
    inputs: list[Any] = [
        {name: default} if has_default else name for name, default, has_default in definition.input
    ]
    walk.rolling = walk.assignments("input", "properties.input", inputs, walk.rolling)
    variables: list[Any] = [{name: value} for name, value in definition.vars]
    walk.rolling = walk.assignments("vars", "properties.vars", variables, walk.rolling)
    walk.tasks()
    outputs: list[Any] = [{name: value} for name, value in definition.output]
    walk.assignments("output", "properties.output", outputs, walk.rolling)
    return sorted(walk.problems, key=lambda problem: str(problem["spec_path"]))


# --- content (StackStorm) ---------------------------------------------------------------------


def inspect_content(
    definition: WorkflowDefinition, action_parameters: ActionParameters
) -> list[Problem]:
    """Each task's action is registered and its input fits the action's parameters."""
    problems: list[Problem] = []
    action_path = f"{TASK_PATH}.properties.action"
    input_path = f"{TASK_PATH}.properties.input"
    for name, task in definition.tasks.items():
        action = task.action
        if not action or has_expressions(action):
            continue
        spec_action = f"tasks.{name}.action"
        if "." not in action:
            message = f'The action reference "{action}" is not formatted correctly.'
            problems.append(_problem("content", message, spec_action, action_path))
            continue
        schema = action_parameters(action)
        if schema is None:
            message = f'The action "{action}" is not registered in the database.'
            problems.append(_problem("content", message, spec_action, action_path))
            continue
        given = task.input
        if given and not isinstance(given, dict):
            continue
        given = given or {}
        required = sorted(
            key
            for key, meta in schema.items()
            if isinstance(meta, dict) and meta.get("required") and "default" not in meta
        )
        for key in required:
            if key not in given:
                message = f'Action "{action}" is missing required input "{key}".'
                problems.append(_problem("content", message, f"tasks.{name}.input", input_path))
        for key in sorted(set(given) - set(schema)):
            message = f'Action "{action}" has unexpected input "{key}".'
            problems.append(
                _problem(
                    "content",
                    message,
                    f"tasks.{name}.input.{key}",
                    f"{input_path}.patternProperties.^\\w+$",
                )
            )
    return problems


# --- all of it --------------------------------------------------------------------------------

ORQUESTA_CHECKS = frozenset({"syntax", "semantic", "expression", "context"})


def _by_place(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (str(p["schema_path"] or ""), str(p["spec_path"] or "")))


def _by_type(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (str(p["type"]), str(p["schema_path"] or "")))


def inspect_document(
    document: Mapping[str, Any],
    *,
    known_context: Iterable[str] = RUNTIME_CONTEXT_KEYS,
    action_parameters: ActionParameters | None = None,
) -> list[Problem]:
    """Every problem of a parsed definition; ``action_parameters`` adds the content checks."""
    problems = _by_place(inspect_syntax(document))
    try:
        definition = build_definition(document)
    except DefinitionError:
        return _by_type(problems)
    try:
        problems += _by_place(inspect_semantics(definition))
        problems += _by_place(inspect_expressions(definition, document))
        problems += _by_place(inspect_context(definition, known_context))
    except (DefinitionError, TypeError, AttributeError, re.error) as error:
        # A document broken enough to defeat the walk has syntax problems that say why.
        if not problems:
            problems.append(_problem("syntax", str(error), None, None))
    if action_parameters is not None:
        problems += inspect_content(definition, action_parameters)
    return _by_type(problems)


def inspect_text(
    text: str,
    *,
    known_context: Iterable[str] = RUNTIME_CONTEXT_KEYS,
    action_parameters: ActionParameters | None = None,
) -> list[Problem]:
    """:func:`inspect_document` on YAML text; unreadable YAML is one syntax problem."""
    try:
        document = read_document(text)
    except DefinitionError as error:
        return [_problem("syntax", str(error), None, None)]
    return inspect_document(
        document, known_context=known_context, action_parameters=action_parameters
    )


def describe(problem: Problem) -> str:
    """One line for an operator: where, then what."""
    where = problem.get("spec_path") or "(the whole definition)"
    expression = f" ({problem['expression']})" if problem.get("expression") else ""
    return f"{where}: {problem['type']} error{expression}: {problem['message']}"
