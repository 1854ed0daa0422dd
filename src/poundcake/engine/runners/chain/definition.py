"""An ActionChain definition: read a chain file and check it before anything runs.

The format is StackStorm's: ``chain`` (a list of tasks with ``name``, ``ref``, ``params`` or
``parameters``, ``on-success``, ``on-failure``, ``publish`` and ``notify``), an optional
``default`` (the first task) and optional ``vars``. Unknown keys are refused, as StackStorm's
schema does. Without ``default`` the chain starts at the first task no other task names in
``on-success`` or ``on-failure``, or else at the first task in the list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from poundcake.exceptions import ValidationError

CHAIN_KEYS = frozenset({"chain", "default", "vars"})
TASK_KEYS = frozenset(
    {"name", "ref", "params", "parameters", "on-success", "on-failure", "publish", "notify"}
)
_VARIABLE_NAME = re.compile(r"\w+")


class ChainDefinitionError(ValidationError):
    """A chain file that cannot be read or breaks the ActionChain format."""


@dataclass(frozen=True)
class ChainTask:
    """One task (StackStorm: node) of a chain."""

    name: str
    ref: str
    parameters: dict[str, Any] = field(default_factory=dict)
    on_success: str | None = None
    on_failure: str | None = None
    publish: dict[str, Any] = field(default_factory=dict)
    notify: dict[str, Any] | None = None

    def context(self) -> dict[str, Any]:
        """The task as a child execution's ``context.chain`` shows it (StackStorm's node)."""
        return {
            "name": self.name,
            "ref": self.ref,
            "params": self.parameters,
            "on_success": self.on_success,
            "on_failure": self.on_failure,
            "publish": self.publish,
            "notify": self.notify,
        }


@dataclass(frozen=True)
class ActionChain:
    """A checked chain: its tasks by name, the first task and the initial ``vars``."""

    tasks: tuple[ChainTask, ...]
    default: str
    vars: dict[str, Any] = field(default_factory=dict)

    def task(self, name: str) -> ChainTask:
        """Return the task called ``name``."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise ChainDefinitionError(f'Unable to find node with name "{name}".')

    def first(self) -> ChainTask:
        """Return the task the chain starts with."""
        return self.task(self.default)

    def next_task(self, task: ChainTask, *, succeeded: bool) -> ChainTask | None:
        """Return the task that follows ``task`` on success or failure, or None at the end."""
        name = task.on_success if succeeded else task.on_failure
        return self.task(name) if name else None


def load_chain(path: Path) -> ActionChain:
    """Read and check the chain file at ``path``."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ChainDefinitionError(
            f'Failed to parse action chain definition from "{path}": {error}'
        ) from None
    return parse_chain(document, source=str(path))


def parse_chain(document: Any, *, source: str = "<chain>") -> ActionChain:
    """Check a loaded chain document and return the chain it describes."""
    try:
        return _parse(document)
    except ChainDefinitionError as error:
        raise ChainDefinitionError(f'Invalid action chain "{source}": {error}') from None


def _parse(document: Any) -> ActionChain:
    if not isinstance(document, Mapping):
        raise ChainDefinitionError("the file must hold a mapping with a 'chain' list")
    _refuse_unknown(document, CHAIN_KEYS, "the chain")
    items = document.get("chain")
    if not isinstance(items, list) or not items:
        raise ChainDefinitionError("'chain' must be a non-empty list of tasks")
    tasks = tuple(_task(index, item) for index, item in enumerate(items))
    names = [task.name for task in tasks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ChainDefinitionError(f"task names must be unique; repeated: {', '.join(duplicates)}")
    for task in tasks:
        for key, target in (("on-success", task.on_success), ("on-failure", task.on_failure)):
            if target and target not in names:
                raise ChainDefinitionError(
                    f'Unable to find node with name "{target}" referenced in "{key}" '
                    f'in task "{task.name}".'
                )
    default = document.get("default")
    if default is not None and not isinstance(default, str):
        raise ChainDefinitionError("'default' must be a task name")
    if default and default not in names:
        raise ChainDefinitionError(
            f'Unable to find node with name "{default}" referenced in "default".'
        )
    variables = _variables(document.get("vars"), "'vars'")
    return ActionChain(tasks=tasks, default=default or _first(tasks), vars=variables)


def _first(tasks: tuple[ChainTask, ...]) -> str:
    referenced = {name for task in tasks for name in (task.on_success, task.on_failure) if name}
    for task in tasks:
        if task.name not in referenced:
            return task.name
    return tasks[0].name


def _task(index: int, item: Any) -> ChainTask:
    if not isinstance(item, Mapping):
        raise ChainDefinitionError(f"task #{index + 1} must be a mapping")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ChainDefinitionError(f"task #{index + 1} needs a 'name'")
    where = f'task "{name}"'
    _refuse_unknown(item, TASK_KEYS, where)
    ref = item.get("ref")
    if not isinstance(ref, str) or not ref:
        raise ChainDefinitionError(f"{where} needs a 'ref' (the action to run)")
    if item.get("params") and item.get("parameters"):
        raise ChainDefinitionError(
            f'{where}: either "params" or "parameters" attribute needs to be provided, but not both'
        )
    parameters = item.get("parameters") or item.get("params") or {}
    if not isinstance(parameters, Mapping):
        raise ChainDefinitionError(f"{where}: 'params' must be a mapping")
    notify = item.get("notify")
    if notify is not None and not isinstance(notify, Mapping):
        raise ChainDefinitionError(f"{where}: 'notify' must be a mapping")
    return ChainTask(
        name=name,
        ref=ref,
        parameters=dict(parameters),
        on_success=_next_name(item, "on-success", where),
        on_failure=_next_name(item, "on-failure", where),
        publish=_variables(item.get("publish"), f"{where}: 'publish'"),
        notify=dict(notify) if notify is not None else None,
    )


def _next_name(item: Mapping[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ChainDefinitionError(f"{where}: '{key}' must be a task name")
    return value


def _variables(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ChainDefinitionError(f"{what} must be a mapping of names to values")
    bad = [str(name) for name in value if not _VARIABLE_NAME.fullmatch(str(name))]
    if bad:
        raise ChainDefinitionError(f"{what} has invalid variable names: {', '.join(bad)}")
    return {str(name): item for name, item in value.items()}


def _refuse_unknown(item: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in item if key not in allowed)
    if unknown:
        raise ChainDefinitionError(
            f"{where} has unknown keys: {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
