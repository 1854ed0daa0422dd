"""CABs (Custom Action Buckets) as operators write them: YAML files, one CAB per file.

```yaml
name: disk_cleanup                     # [a-z0-9_], unique
description: Free space when a disk fills up
alert_name_pattern: "^(DiskFull|DiskAlmostFull)$"   # regex searched in labels.alertname
severity_filter: [critical, warning]   # optional; empty = any severity
stop_on_first_failure: true            # default true
enabled: true                          # default true
# Run safety (see poundcake.remediation.cabs.run_safety): silence, verify_within,
# on_unverified, idempotent, retry.
steps:
  - name: clean_tmp                    # optional; default step_<n>
    action: core.local                 # an engine action
    parameters:                        # Jinja: alert.labels, alert.annotations, request_id
      cmd: "find /tmp -mtime +7 -delete; echo cleaned {{ alert.labels.instance }}"
    expected_result: {succeeded: true} # optional (see the steps runner)
    timeout_seconds: 60                # optional
```

This module checks what can be checked without the engine (names, regex, templates, the shape
of each step); :mod:`poundcake.remediation.cabs.validation` checks the actions and their
parameters against the engine. Every problem names the file and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateError, meta

from poundcake.engine.public import environment, is_template
from poundcake.exceptions import ValidationError
from poundcake.remediation.cabs.guard_fields import (
    GUARD_KEYS,
    GUARD_TEMPLATE_NAMES,
    CabGuards,
    GuardFieldError,
    parse_guards,
)
from poundcake.remediation.cabs.run_safety import RUN_SAFETY_KEYS, RunSafety, parse_run_safety

NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
STEP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,99}$")
ACTION_REF = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+$")
CAB_KEYS = (
    frozenset(
        {
            "name",
            "description",
            "alert_name_pattern",
            "severity_filter",
            "stop_on_first_failure",
            "enabled",
            "steps",
        }
    )
    | RUN_SAFETY_KEYS
    | GUARD_KEYS
)
STEP_KEYS = frozenset({"name", "action", "parameters", "expected_result", "timeout_seconds"})
# What step parameter templates may name: the alert, the request, the datastore, and the
# results of earlier steps (by step name).
TEMPLATE_NAMES = frozenset({"alert", "request_id", "st2kv"})
YAML_SUFFIXES = (".yaml", ".yml")


class CabError(ValidationError):
    """A CAB that cannot be loaded; the message names where (``file: steps[1].action: ...``)."""


@dataclass(frozen=True)
class CabStep:
    """One ordered step: an engine action with parameter templates and an expected result."""

    order: int
    name: str
    action: str
    parameters: dict[str, Any] = field(default_factory=dict)
    expected_result: dict[str, Any] | None = None
    timeout_seconds: int | None = None

    def document(self) -> dict[str, Any]:
        """The step as the API shows it."""
        document: dict[str, Any] = {
            "step_order": self.order,
            "name": self.name,
            "action": self.action,
            "parameters": self.parameters,
        }
        if self.expected_result is not None:
            document["expected_result"] = self.expected_result
        if self.timeout_seconds is not None:
            document["timeout_seconds"] = self.timeout_seconds
        return document


@dataclass(frozen=True)
class Cab:
    """A validated CAB."""

    name: str
    alert_name_pattern: str
    steps: tuple[CabStep, ...]
    description: str = ""
    severity_filter: tuple[str, ...] = ()
    stop_on_first_failure: bool = True
    enabled: bool = True
    source: str | None = None
    # Run safety: silence, verification, crash-safe retries (issue 21).
    run_safety: RunSafety = field(default_factory=RunSafety)
    # The admission guards (budgets, locks, breaker, shadow mode): cabs/guard_fields.py.
    guards: CabGuards = field(default_factory=CabGuards)

    def document(self) -> dict[str, Any]:
        """The CAB as the API and ``cabs list`` show it (steps numbered)."""
        return {
            "name": self.name,
            "description": self.description,
            "alert_name_pattern": self.alert_name_pattern,
            "severity_filter": list(self.severity_filter),
            "stop_on_first_failure": self.stop_on_first_failure,
            "enabled": self.enabled,
            "steps": [step.document() for step in self.steps],
            **self.run_safety.document(),
            **self.guards.document(),
        }

    def file_document(self) -> dict[str, Any]:
        """The CAB as its YAML file holds it (what :func:`parse_cab` reads back)."""
        document = self.document()
        for step in document["steps"]:
            del step["step_order"]
        return document

    def matches(self, alert_name: str, severity: str | None) -> bool:
        """Tell whether an alert with this name and severity is this CAB's."""
        if not re.search(self.alert_name_pattern, alert_name):
            return False
        return not self.severity_filter or (severity or "") in self.severity_filter


def _problem(where: str, field_name: str, message: str) -> CabError:
    prefix = f"{where}: " if where else ""
    return CabError(f"{prefix}{field_name}: {message}")


def _templates(value: Any) -> list[str]:
    if is_template(value):
        return [value]
    if isinstance(value, list):
        return [t for item in value for t in _templates(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _templates(item)]
    return []


def _check_templates(value: Any, allowed: frozenset[str], where: str, field_name: str) -> None:
    for template in _templates(value):
        try:
            names = meta.find_undeclared_variables(environment().parse(template))
        except TemplateError as error:
            raise _problem(where, field_name, f"invalid template {template!r}: {error}") from None
        unknown = sorted(set(names) - allowed)
        if unknown:
            raise _problem(
                where,
                field_name,
                f"template {template!r} uses {', '.join(unknown)}; templates may use "
                f"{', '.join(sorted(allowed))}",
            )


def _step(raw: Any, index: int, earlier: set[str], where: str) -> CabStep:
    here = f"steps[{index}]"
    if not isinstance(raw, Mapping):
        raise _problem(where, here, "must be a mapping with action and parameters")
    unknown = sorted(set(raw) - STEP_KEYS)
    if unknown:
        raise _problem(where, f"{here}.{unknown[0]}", "is not a step field")
    action = raw.get("action")
    if not isinstance(action, str) or not ACTION_REF.match(action):
        raise _problem(where, f"{here}.action", "is required: an action ref like core.local")
    name = raw.get("name", f"step_{index + 1}")
    if not isinstance(name, str) or not STEP_NAME.match(name):
        raise _problem(where, f"{here}.name", "must be a word ([A-Za-z0-9_-], a letter first)")
    if name in earlier:
        raise _problem(where, f"{here}.name", f'"{name}" is used by an earlier step')
    parameters = raw.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise _problem(where, f"{here}.parameters", "must be a mapping")
    allowed = TEMPLATE_NAMES | frozenset(earlier)
    for key, value in parameters.items():
        _check_templates(value, allowed, where, f"{here}.parameters.{key}")
    expected = raw.get("expected_result")
    if expected is not None and not isinstance(expected, Mapping):
        raise _problem(where, f"{here}.expected_result", "must be a mapping")
    timeout = raw.get("timeout_seconds")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1
    ):
        raise _problem(where, f"{here}.timeout_seconds", "must be a whole number of seconds >= 1")
    return CabStep(
        order=index + 1,
        name=name,
        action=action,
        parameters=dict(parameters),
        expected_result=dict(expected) if expected is not None else None,
        timeout_seconds=timeout,
    )


def parse_cab(document: Any, *, source: str | None = None) -> Cab:
    """Validate one CAB document (from YAML or the API); CabError names the field."""
    where = source or ""
    if not isinstance(document, Mapping):
        raise _problem(where, "document", "must be a mapping")
    unknown = sorted(set(document) - CAB_KEYS)
    if unknown:
        raise _problem(where, unknown[0], "is not a CAB field")
    name = document.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise _problem(where, "name", "is required: a-z, 0-9 and _, a letter first")
    pattern = document.get("alert_name_pattern")
    if not isinstance(pattern, str) or not pattern:
        raise _problem(where, "alert_name_pattern", "is required: a regular expression")
    try:
        re.compile(pattern)
    except re.error as error:
        raise _problem(where, "alert_name_pattern", f"is not a valid regex: {error}") from None
    severities = document.get("severity_filter") or []
    if isinstance(severities, str):
        severities = [severities]
    if not isinstance(severities, list) or not all(isinstance(s, str) for s in severities):
        raise _problem(where, "severity_filter", "must be a list of severities")
    flags = {}
    for flag, default in (("stop_on_first_failure", True), ("enabled", True)):
        value = document.get(flag, default)
        if not isinstance(value, bool):
            raise _problem(where, flag, "must be true or false")
        flags[flag] = value
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise _problem(where, "steps", "is required: a list of at least one step")
    steps: list[CabStep] = []
    for index, raw in enumerate(raw_steps):
        steps.append(_step(raw, index, {step.name for step in steps}, where))
    description = document.get("description") or ""
    if not isinstance(description, str):
        raise _problem(where, "description", "must be text")
    run_safety = parse_run_safety(
        document, lambda field_name, message: _problem(where, field_name, message)
    )
    try:
        guards = parse_guards(document, where)
    except GuardFieldError as error:
        raise CabError(str(error)) from None
    for field_name, template in guards.templates().items():
        _check_templates(template, GUARD_TEMPLATE_NAMES, where, field_name)
    return Cab(
        name=name,
        description=description,
        alert_name_pattern=pattern,
        severity_filter=tuple(severities),
        stop_on_first_failure=flags["stop_on_first_failure"],
        enabled=flags["enabled"],
        steps=tuple(steps),
        source=source,
        run_safety=run_safety,
        guards=guards,
    )


def load_cab_file(path: Path) -> Cab:
    """Read and validate one CAB file."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise CabError(f"{path}: cannot be read ({error})") from None
    except yaml.YAMLError as error:
        raise CabError(f"{path}: is not valid YAML ({error})") from None
    cab = parse_cab(document, source=str(path))
    if path.stem != cab.name:
        raise _problem(str(path), "name", f'"{cab.name}" must match the file name "{path.stem}"')
    return cab


def load_cab_directory(directory: Path) -> tuple[list[Cab], list[CabError]]:
    """Every CAB file in ``directory`` (sorted), and the problems of those that do not load."""
    cabs: list[Cab] = []
    problems: list[CabError] = []
    if not directory.is_dir():
        return cabs, problems
    for path in sorted(directory.iterdir()):
        if path.suffix not in YAML_SUFFIXES or not path.is_file():
            continue
        try:
            cabs.append(load_cab_file(path))
        except CabError as error:
            problems.append(error)
    return cabs, problems
