"""Script arguments built from action parameters, StackStorm's way, and the argv around them."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from poundcake.engine.runners.shell.arguments import (
    command_line,
    named_arguments,
    positional_names,
    script_arguments,
    serialize_value,
)
from poundcake.engine.runners.shell.runner import script_command, with_sudo


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "1"),
        (False, "0"),
        (0, "0"),
        (42, "42"),
        (1.5, "1.5"),
        ("text", "text"),
        (["a", "b", 3], "a,b,3"),
        ([], ""),
        ({"k": [1, 2], "name": "café"}, '{"k":[1,2],"name":"café"}'),
        ({}, ""),
    ],
)
def test_values_are_serialised_as_stackstorm_does(value: object, expected: str) -> None:
    assert serialize_value(value) == expected


def test_positional_parameters_are_ordered_by_position_not_by_name_or_declaration() -> None:
    schema: dict[str, dict[str, Any]] = {
        "zeta": {"type": "string", "position": 0},
        "alpha": {"type": "string", "position": 2},
        "named": {"type": "string"},
        "mid": {"type": "string", "position": 1},
    }
    assert positional_names(schema) == ["zeta", "mid", "alpha"]


def test_named_arguments_follow_stackstorm_rules_for_booleans_and_empty_values() -> None:
    parameters = {
        "on": True,
        "off": False,
        "nothing": None,
        "empty": "",
        "count": 3,
        "hosts": ["a", "b"],
        "data": {"x": 1},
    }
    assert named_arguments(parameters, kwarg_op="--") == [
        "--on",
        "--count=3",
        "--hosts=a,b",
        '--data={"x":1}',
    ]


def test_named_arguments_come_first_then_positional_ones_with_empty_gaps() -> None:
    schema: dict[str, dict[str, Any]] = {
        "first": {"type": "string", "position": 0},
        "second": {"type": "boolean", "position": 1},
        "third": {"type": "string", "position": 2},
        "verbose": {"type": "boolean"},
    }
    parameters = {"first": "one", "second": False, "verbose": True}
    assert script_arguments(parameters, schema, kwarg_op="-") == ["-verbose", "one", "0", ""]


def test_parameters_not_in_the_schema_are_named_arguments() -> None:
    assert script_arguments({"extra": "x"}, {}) == ["--extra=x"]


def test_hostile_values_are_passed_verbatim_as_single_arguments() -> None:
    hostile = 'it\'s "quoted" $(touch pwned); rm -rf / `id`\nsecond line'
    schema = {"target": {"type": "string", "position": 0}}
    argv = script_arguments({"target": hostile, "note": hostile}, schema)
    assert argv == [f"--note={hostile}", hostile]


def test_command_line_quotes_every_word_so_a_shell_gives_back_the_same_argv() -> None:
    argv = ["/tmp/run me.sh", "--note=a'b", "$(id)", "x; y", "line\nbreak", ""]
    line = command_line(argv)
    assert shlex.split(line) == argv
    assert "$(id)" not in line.replace("'$(id)'", "")


def test_sudo_prefixes_the_argv_unless_already_root() -> None:
    argv = ["bash", "-c", "id -u"]
    assert with_sudo(argv, sudo=False, password=None, as_root=False) == (argv, None)
    assert with_sudo(argv, sudo=True, password="pw", as_root=True) == (argv, None)
    assert with_sudo(argv, sudo=True, password=None, as_root=False) == (
        ["sudo", "-E", "--", *argv],
        None,
    )
    assert with_sudo(argv, sudo=True, password="pw", as_root=False) == (
        ["sudo", "-S", "-E", "--", *argv],
        "pw\n",
    )


def test_a_script_is_executed_by_its_shebang_when_it_is_not_executable(tmp_path: Path) -> None:
    executable = tmp_path / "exec.sh"
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    python = tmp_path / "tool"
    python.write_text("#!/usr/bin/env python3 -u\nprint(1)\n")
    python.chmod(0o644)
    plain = tmp_path / "plain"
    plain.write_text("echo hi\n")
    plain.chmod(0o644)

    assert script_command(executable) == [str(executable)]
    assert script_command(python) == ["/usr/bin/env", "python3 -u", str(python)]
    assert script_command(plain) == ["bash", str(plain)]
