"""StackStorm's shell result document."""

from __future__ import annotations

import pytest

from poundcake.engine.executions.results import EncodedText
from poundcake.engine.runners.shell.results import (
    parse_output,
    shell_result,
    strip_shell_chars,
    sudo_password_error,
    timeout_error,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("out\n", "out"),
        ("out\n\n", "out\n"),
        ("out\r\n", "out"),
        ("out\r", "out"),
        ("out", "out"),
        ("", ""),
    ],
)
def test_one_trailing_newline_is_stripped(text: str, expected: str) -> None:
    assert strip_shell_chars(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": [1, 2]}', {"a": [1, 2]}),
        ("  [1, 2]", [1, 2]),
        ("42", "42"),
        ('"quoted"', '"quoted"'),
        ("true", "true"),
        ("{not json", "{not json"),
        ("plain text", "plain text"),
    ],
)
def test_only_json_objects_and_arrays_are_parsed(text: str, expected: object) -> None:
    assert parse_output(text) == expected


def test_a_zero_exit_code_is_success_with_parsed_and_stripped_streams() -> None:
    assert shell_result(0, '{"ok": true}\n', "warning\n") == {
        "failed": False,
        "succeeded": True,
        "return_code": 0,
        "stdout": {"ok": True},
        "stderr": "warning",
    }


def test_a_non_zero_exit_code_is_failure() -> None:
    result = shell_result(3, "", "boom\n")
    assert (result["failed"], result["succeeded"], result["return_code"]) == (True, False, 3)
    assert "error" not in result


def test_an_error_makes_even_exit_code_zero_a_failure() -> None:
    result = shell_result(0, "", "", error="went wrong")
    assert result["succeeded"] is False
    assert result["error"] == "went wrong"


def test_timeout_message_matches_stackstorm() -> None:
    assert timeout_error(60) == "Action failed to complete in 60 seconds"
    assert timeout_error(2.0) == "Action failed to complete in 2 seconds"
    assert timeout_error(1.5) == "Action failed to complete in 1.5 seconds"


def test_a_rejected_sudo_password_is_reported_with_the_user() -> None:
    stderr = "[sudo] password for deploy: \nsudo: 3 incorrect password attempts\n"
    assert sudo_password_error(stderr) == (
        "Invalid sudo password provided or sudo is not configured for this user (deploy)"
    )
    assert sudo_password_error("all fine") is None


def test_large_output_stays_encoded_stripped_of_one_newline_and_json_is_parsed() -> None:
    text = "line é 🙂\n" * 10_000
    result = shell_result(0, EncodedText((text + "\r\n").encode()), EncodedText(b"[1, 2]\n"))
    assert isinstance(result["stdout"], EncodedText)
    assert str(result["stdout"]) == text
    assert result["stderr"] == [1, 2]
    assert parse_output(EncodedText(b" {not json")) == EncodedText(b" {not json")
