"""A steps definition: read a steps file and check it before anything runs.

The file (the action's ``entry_point``, relative to the pack's ``actions/`` directory) holds::

    stop_on_first_failure: true        # optional, default true
    steps:
      - name: free_space               # unique, [A-Za-z0-9_-]+
        ref: core.local                # the action to run
        parameters: {cmd: "df -h {{ alert.labels.mountpoint }}"}   # optional, Jinja
        expected_result: {succeeded: true}                          # optional, see expected.py
        timeout_seconds: 60                                         # optional, positive integer

Unknown keys are refused. Errors name the offending key by its path in the file, e.g.
``steps[2].expected_result.stdout_matches`` (list indexes count from 0).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from poundcake.engine.runners.steps.expected import ExpectedResult, parse_expected_result
from poundcake.exceptions import ValidationError

WORKFLOW_KEYS = frozenset({"stop_on_first_failure", "steps"})
STEP_KEYS = frozenset({"name", "ref", "parameters", "expected_result", "timeout_seconds"})
# Names templates already use for something else; a step called so would hide it.
RESERVED_NAMES = frozenset({"st2kv"})
_STEP_NAME = re.compile(r"[A-Za-z0-9_-]+")


class StepsDefinitionError(ValidationError):
    """A steps file that cannot be read or breaks the format."""


@dataclass(frozen=True)
class Step:
    """One step: an action to run, its parameter templates and what it must return."""

    name: str
    ref: str
    parameters: dict[str, Any] = field(default_factory=dict)
    expected_result: ExpectedResult | None = None
    expected_result_document: dict[str, Any] | None = None
    timeout_seconds: int | None = None


@dataclass(frozen=True)
class StepsWorkflow:
    """A checked steps definition."""

    steps: tuple[Step, ...]
    stop_on_first_failure: bool = True


def load_steps(path: Path) -> StepsWorkflow:
    """Read and check the steps file at ``path`` (parsed again only when the file changed)."""
    try:
        stat = path.stat()
    except OSError as error:
        raise StepsDefinitionError(f'Failed to read steps definition "{path}": {error}') from None
    return _load_steps(path, stat.st_mtime_ns, stat.st_size, stat.st_ino)


@functools.lru_cache(maxsize=256)
def _load_steps(path: Path, _mtime_ns: int, _size: int, _inode: int) -> StepsWorkflow:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise StepsDefinitionError(f'Failed to read steps definition "{path}": {error}') from None
    return parse_steps(document, source=str(path))


def parse_steps(document: Any, *, source: str = "<steps>") -> StepsWorkflow:
    """Check a loaded steps document and return the workflow it describes."""
    try:
        return _parse(document)
    except ValidationError as error:
        raise StepsDefinitionError(f'Invalid steps definition "{source}": {error}') from None


def _parse(document: Any) -> StepsWorkflow:
    if not isinstance(document, Mapping):
        raise StepsDefinitionError("the file must hold a mapping with a 'steps' list")
    _refuse_unknown(document, WORKFLOW_KEYS, "the definition")
    stop = document.get("stop_on_first_failure", True)
    if not isinstance(stop, bool):
        raise StepsDefinitionError("stop_on_first_failure: must be true or false")
    items = document.get("steps")
    if not isinstance(items, list) or not items:
        raise StepsDefinitionError("steps: must be a non-empty list of steps")
    steps = tuple(_step(f"steps[{index}]", item) for index, item in enumerate(items))
    seen: dict[str, int] = {}
    for index, step in enumerate(steps):
        if step.name in seen:
            raise StepsDefinitionError(
                f'steps[{index}].name: "{step.name}" is already the name of '
                f"steps[{seen[step.name]}]"
            )
        seen[step.name] = index
    return StepsWorkflow(steps=steps, stop_on_first_failure=stop)


def _step(where: str, item: Any) -> Step:
    if not isinstance(item, Mapping):
        raise StepsDefinitionError(f"{where}: must be a mapping")
    _refuse_unknown(item, STEP_KEYS, where)
    name = item.get("name")
    if not isinstance(name, str) or not _STEP_NAME.fullmatch(name):
        raise StepsDefinitionError(
            f"{where}.name: required, letters, digits, '_' and '-' only, got {name!r}"
        )
    if name in RESERVED_NAMES:
        raise StepsDefinitionError(f'{where}.name: "{name}" is reserved')
    ref = item.get("ref")
    if not isinstance(ref, str) or not ref.strip():
        raise StepsDefinitionError(f"{where}.ref: required, the ref of the action to run")
    parameters = item.get("parameters")
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise StepsDefinitionError(f"{where}.parameters: must be a mapping")
    expected = item.get("expected_result")
    timeout = item.get("timeout_seconds")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0
    ):
        raise StepsDefinitionError(
            f"{where}.timeout_seconds: must be a positive integer, got {timeout!r}"
        )
    return Step(
        name=name,
        ref=ref.strip(),
        parameters={str(key): value for key, value in parameters.items()},
        expected_result=parse_expected_result(expected, f"{where}.expected_result"),
        expected_result_document=dict(expected) if isinstance(expected, Mapping) else None,
        timeout_seconds=timeout,
    )


def _refuse_unknown(item: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in item if key not in allowed)
    if unknown:
        raise StepsDefinitionError(
            f"{where}: unknown keys {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
