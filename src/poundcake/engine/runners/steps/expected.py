"""What a step expects of its execution, and the check of a finished execution against it.

``expected_result`` absent, null or ``{}``: the step matches when its execution succeeded.
Otherwise it is a mapping of checks, and every check given must hold (only those given are
checked, so ``{return_code: 1}`` matches a command that failed with exit code 1):

``succeeded``
    bool; whether the execution's status is ``succeeded``.
``status``
    string; the execution's final status (``succeeded``, ``failed``, ``timeout``, ``canceled``
    or ``abandoned``).
``return_code``
    int; equals ``result.return_code``.
``stdout_contains``
    string; a substring of ``result.stdout``.
``stdout_matches``
    string; a regular expression found (``re.search``) in ``result.stdout``.
``result``
    mapping; a recursive subset of the result: each key must be present and its value match,
    mappings recursively, anything else (lists included) by equality; a boolean only equals a
    boolean.
``schema``
    mapping; a JSON schema the whole result validates against.

A ``stdout`` the runner parsed as JSON is searched as its JSON text. Checks are validated when
the definition is read; an error names the key that is wrong, e.g.
``steps[2].expected_result.stdout_matches``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from poundcake.engine.executions.states import COMPLETED, ExecutionStatus
from poundcake.exceptions import ValidationError

EXPECTED_KEYS = frozenset(
    {"succeeded", "status", "return_code", "stdout_contains", "stdout_matches", "result", "schema"}
)
FINAL_STATUSES = tuple(sorted(status.value for status in COMPLETED))
_SHOWN_CHARS = 200


class ExpectedResultError(ValidationError):
    """An ``expected_result`` that cannot be checked; the message names the key at fault."""


@dataclass(frozen=True)
class ExpectedResult:
    """The checks one step's execution must pass; ``None`` fields are not checked."""

    succeeded: bool | None = None
    status: str | None = None
    return_code: int | None = None
    stdout_contains: str | None = None
    stdout_matches: re.Pattern[str] | None = None
    result: Mapping[str, Any] | None = None
    schema: dict[str, Any] | None = None

    def mismatches(self, status: str, result: Any) -> list[str]:
        """Return why an execution that ended in ``status`` with ``result`` does not match."""
        found: list[str] = []
        if self.succeeded is not None and (status == ExecutionStatus.SUCCEEDED) != self.succeeded:
            found.append(f"succeeded: expected {self.succeeded}, the status is {status}")
        if self.status is not None and status != self.status:
            found.append(f"status: expected {self.status}, got {status}")
        if self.return_code is not None:
            found.extend(_return_code(self.return_code, result))
        if self.stdout_contains is not None or self.stdout_matches is not None:
            found.extend(self._stdout(result))
        if self.result is not None:
            found.extend(subset_mismatches(self.result, result, "result"))
        if self.schema is not None:
            found.extend(_schema(self.schema, result))
        return found

    def _stdout(self, result: Any) -> list[str]:
        stdout = result.get("stdout") if isinstance(result, Mapping) else None
        if stdout is None:
            return ["stdout: the result has no stdout"]
        text = stdout if isinstance(stdout, str) else json.dumps(stdout)
        found = []
        if self.stdout_contains is not None and self.stdout_contains not in text:
            found.append(f"stdout_contains: {self.stdout_contains!r} not in {_shown(text)}")
        if self.stdout_matches is not None and self.stdout_matches.search(text) is None:
            found.append(
                f"stdout_matches: /{self.stdout_matches.pattern}/ not found in {_shown(text)}"
            )
        return found


def check(expected: ExpectedResult | None, status: str, result: Any) -> list[str]:
    """Return the mismatches of a finished execution; without expectations it must succeed."""
    if expected is None:
        if status == ExecutionStatus.SUCCEEDED:
            return []
        return [f"status: expected succeeded, got {status}"]
    return expected.mismatches(status, result)


def parse_expected_result(value: Any, where: str) -> ExpectedResult | None:
    """Check an ``expected_result`` as written; ``where`` names it in error messages."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ExpectedResultError(f"{where}: must be a mapping of checks")
    unknown = sorted(str(key) for key in value if key not in EXPECTED_KEYS)
    if unknown:
        raise ExpectedResultError(
            f"{where}: unknown keys {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(EXPECTED_KEYS))})"
        )
    if not value:
        return None
    return ExpectedResult(
        succeeded=_typed(value, "succeeded", bool, "a boolean", where),
        status=_status(value.get("status"), f"{where}.status"),
        return_code=_return_code_value(value.get("return_code"), f"{where}.return_code"),
        stdout_contains=_typed(value, "stdout_contains", str, "a string", where),
        stdout_matches=_pattern(value.get("stdout_matches"), f"{where}.stdout_matches"),
        result=_typed(value, "result", Mapping, "a mapping", where),
        schema=_json_schema(value.get("schema"), f"{where}.schema"),
    )


def subset_mismatches(expected: Any, actual: Any, path: str) -> list[str]:
    """Where ``expected`` is not a recursive subset of ``actual`` (mappings by key)."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{path}: expected a mapping, got {_shown(actual)}"]
        found: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{path}.{key}: missing")
            else:
                found.extend(subset_mismatches(value, actual[key], f"{path}.{key}"))
        return found
    if isinstance(expected, bool) != isinstance(actual, bool) or expected != actual:
        return [f"{path}: expected {_shown(expected)}, got {_shown(actual)}"]
    return []


def _return_code(expected: int, result: Any) -> list[str]:
    actual = result.get("return_code") if isinstance(result, Mapping) else None
    if actual is None:
        return ["return_code: the result has no return_code"]
    if isinstance(actual, bool) or actual != expected:
        return [f"return_code: expected {expected}, got {_shown(actual)}"]
    return []


def _schema(schema: dict[str, Any], result: Any) -> list[str]:
    validator = validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(result))
    if error is None:
        return []
    where = "".join(f"[{part!r}]" for part in error.absolute_path)
    return [f"schema: result{where}: {error.message}"]


def _typed(
    value: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str, where: str
) -> Any:
    item = value.get(key)
    if item is None:
        return None
    if not isinstance(item, kind):
        raise ExpectedResultError(f"{where}.{key}: must be {what}, got {_shown(item)}")
    return item


def _status(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if value not in FINAL_STATUSES:
        raise ExpectedResultError(
            f"{where}: must be one of {', '.join(FINAL_STATUSES)}, got {_shown(value)}"
        )
    return str(value)


def _return_code_value(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExpectedResultError(f"{where}: must be an integer, got {_shown(value)}")
    return value


def _pattern(value: Any, where: str) -> re.Pattern[str] | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ExpectedResultError(f"{where}: must be a regular expression, got {_shown(value)}")
    try:
        return re.compile(value)
    except re.error as error:
        raise ExpectedResultError(f"{where}: invalid regular expression: {error}") from None


def _json_schema(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ExpectedResultError(f"{where}: must be a JSON schema (a mapping)")
    schema = dict(value)
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as error:
        location = "".join(f"[{part!r}]" for part in error.absolute_path)
        raise ExpectedResultError(
            f"{where}{location}: invalid JSON schema: {error.message}"
        ) from None
    return schema


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
