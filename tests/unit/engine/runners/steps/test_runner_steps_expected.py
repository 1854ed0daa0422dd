"""Checking a finished execution against a step's ``expected_result``."""

from __future__ import annotations

from typing import Any

import pytest

from poundcake.engine.runners.steps.expected import (
    ExpectedResultError,
    check,
    parse_expected_result,
    subset_mismatches,
)

SHELL_OK = {"succeeded": True, "return_code": 0, "stdout": "42% /var", "stderr": ""}
SHELL_FAILED = {"succeeded": False, "return_code": 3, "stdout": "", "stderr": "no"}

# (expected_result, status, result, matched)
CASES: list[tuple[dict[str, Any] | None, str, Any, bool]] = [
    (None, "succeeded", SHELL_OK, True),
    (None, "failed", SHELL_FAILED, False),
    (None, "timeout", {}, False),
    ({}, "succeeded", SHELL_OK, True),
    ({}, "failed", SHELL_FAILED, False),
    ({"succeeded": True}, "succeeded", SHELL_OK, True),
    ({"succeeded": True}, "failed", SHELL_FAILED, False),
    ({"succeeded": False}, "failed", SHELL_FAILED, True),
    ({"succeeded": False}, "succeeded", SHELL_OK, False),
    ({"status": "failed"}, "failed", SHELL_FAILED, True),
    ({"status": "timeout"}, "failed", SHELL_FAILED, False),
    ({"return_code": 3}, "failed", SHELL_FAILED, True),
    ({"return_code": 0}, "failed", SHELL_FAILED, False),
    ({"return_code": 1}, "succeeded", {"return_code": True}, False),
    ({"return_code": 0}, "succeeded", {"ok": True}, False),
    ({"return_code": 0}, "succeeded", "not a mapping", False),
    ({"stdout_contains": "42%"}, "succeeded", SHELL_OK, True),
    ({"stdout_contains": "99%"}, "succeeded", SHELL_OK, False),
    ({"stdout_contains": "x"}, "succeeded", {"return_code": 0}, False),
    ({"stdout_contains": '"used": 42'}, "succeeded", {"stdout": {"used": 42}}, True),
    ({"stdout_matches": r"^\d+% /var$"}, "succeeded", SHELL_OK, True),
    ({"stdout_matches": r"\d+% /home"}, "succeeded", SHELL_OK, False),
    ({"result": {"return_code": 0, "stdout": "42% /var"}}, "succeeded", SHELL_OK, True),
    ({"result": {"return_code": 1}}, "succeeded", SHELL_OK, False),
    ({"result": {"missing": 1}}, "succeeded", SHELL_OK, False),
    ({"result": {"a": {"b": [1, 2]}}}, "succeeded", {"a": {"b": [1, 2], "c": 3}, "d": 4}, True),
    ({"result": {"a": {"b": [1]}}}, "succeeded", {"a": {"b": [1, 2]}}, False),
    ({"result": {"a": {"b": 1}}}, "succeeded", {"a": 1}, False),
    ({"result": {"ok": 1}}, "succeeded", {"ok": True}, False),
    ({"result": {"ok": True}}, "succeeded", {"ok": True}, True),
    ({"result": {}}, "failed", SHELL_FAILED, True),
    (
        {"schema": {"type": "object", "required": ["return_code"]}},
        "succeeded",
        SHELL_OK,
        True,
    ),
    (
        {"schema": {"properties": {"return_code": {"const": 0}}}},
        "failed",
        SHELL_FAILED,
        False,
    ),
    ({"succeeded": True, "return_code": 0, "stdout_contains": "/var"}, "succeeded", SHELL_OK, True),
    ({"succeeded": True, "return_code": 0, "stdout_contains": "/x"}, "succeeded", SHELL_OK, False),
]


@pytest.mark.parametrize(("expected", "status", "result", "matched"), CASES)
def test_expected_result_checks(
    expected: dict[str, Any] | None, status: str, result: Any, matched: bool
) -> None:
    parsed = parse_expected_result(expected, "expected_result")
    mismatches = check(parsed, status, result)
    assert (not mismatches) is matched, mismatches


@pytest.mark.parametrize(
    ("expected", "status", "result", "message"),
    [
        (None, "failed", {}, "status: expected succeeded, got failed"),
        ({"succeeded": True}, "failed", {}, "succeeded: expected True, the status is failed"),
        ({"status": "timeout"}, "failed", {}, "status: expected timeout, got failed"),
        ({"return_code": 0}, "failed", {"return_code": 2}, "return_code: expected 0, got 2"),
        ({"return_code": 0}, "failed", {}, "return_code: the result has no return_code"),
        ({"stdout_contains": "x"}, "succeeded", {"stdout": "abc"}, "stdout_contains: 'x' not in"),
        ({"stdout_matches": "^z"}, "succeeded", {"stdout": "abc"}, "stdout_matches: /^z/ not"),
        ({"result": {"a": {"b": 1}}}, "succeeded", {"a": {"b": 2}}, "result.a.b: expected 1, got"),
        ({"result": {"a": 1}}, "succeeded", {}, "result.a: missing"),
        ({"schema": {"type": "array"}}, "succeeded", {}, "schema: result: {} is not of type"),
        (
            {"schema": {"properties": {"n": {"type": "integer"}}}},
            "succeeded",
            {"n": "x"},
            "schema: result['n']: 'x' is not of type 'integer'",
        ),
    ],
)
def test_mismatches_say_which_check_failed(
    expected: dict[str, Any] | None, status: str, result: Any, message: str
) -> None:
    mismatches = check(parse_expected_result(expected, "expected_result"), status, result)
    assert len(mismatches) == 1
    assert mismatches[0].startswith(message), mismatches


def test_every_failing_check_is_reported() -> None:
    expected = parse_expected_result(
        {"succeeded": True, "return_code": 0, "stdout_contains": "ok"}, "expected_result"
    )
    mismatches = check(expected, "failed", SHELL_FAILED)
    assert [item.split(":")[0] for item in mismatches] == [
        "succeeded",
        "return_code",
        "stdout_contains",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("succeeded", "where: must be a mapping of checks"),
        ({"exit_code": 0}, "where: unknown keys exit_code (allowed: "),
        ({"succeeded": "yes"}, "where.succeeded: must be a boolean"),
        ({"status": "running"}, "where.status: must be one of abandoned, canceled, failed,"),
        ({"return_code": "0"}, "where.return_code: must be an integer"),
        ({"return_code": True}, "where.return_code: must be an integer"),
        ({"stdout_contains": 5}, "where.stdout_contains: must be a string"),
        ({"stdout_matches": "(unclosed"}, "where.stdout_matches: invalid regular expression"),
        ({"stdout_matches": ["a"]}, "where.stdout_matches: must be a regular expression"),
        ({"result": [1, 2]}, "where.result: must be a mapping"),
        ({"schema": "object"}, "where.schema: must be a JSON schema"),
        ({"schema": {"type": "no-such-type"}}, "where.schema['type']: invalid JSON schema"),
    ],
)
def test_invalid_expected_results_are_refused_naming_the_key(value: Any, message: str) -> None:
    with pytest.raises(ExpectedResultError) as raised:
        parse_expected_result(value, "where")
    assert str(raised.value).startswith(message), str(raised.value)


def test_absent_and_empty_expectations_mean_succeeded() -> None:
    assert parse_expected_result(None, "where") is None
    assert parse_expected_result({}, "where") is None


def test_subset_compares_lists_and_scalars_by_equality() -> None:
    assert subset_mismatches({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}], "z": 0}, "r") == []
    assert subset_mismatches({"a": [{"b": 2}]}, {"a": [{"b": 2, "c": 3}]}, "r") == [
        "r.a: expected [{'b': 2}], got [{'b': 2, 'c': 3}]"
    ]
    assert subset_mismatches(1.0, 1, "r") == []
    assert subset_mismatches(None, None, "r") == []
