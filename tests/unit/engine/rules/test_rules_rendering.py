"""Rule action parameters rendered from hostile trigger payloads stay data."""

from __future__ import annotations

import shlex
import subprocess
from typing import Any

import pytest

from poundcake.engine.rendering import render_shell_command
from poundcake.engine.rules.enforcer import render_rule_parameters
from poundcake.exceptions import ValidationError

HOSTILE = [
    "; rm -rf /tmp/never",
    "$(touch /tmp/pwned)",
    "`id`",
    "a && b || c | d > e < f",
    'it\'s "quoted" \\ back',
    "{{ 7 * 7 }}",
    "{% for x in range(3) %}x{% endfor %}",
    "line\nbreak",
    "",
    "*",
    "~root",
    "$HOME",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_payload_value_is_one_shell_word(value: str) -> None:
    command = render_shell_command("printf %s {{ trigger.x }}", {"trigger": {"x": value}})
    assert shlex.split(command) == ["printf", "%s", value]
    ran = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=True)
    assert ran.stdout == value


def test_non_string_values_are_quoted_too() -> None:
    context: dict[str, Any] = {"trigger": {"n": 5, "hosts": ["a b", "c"], "none": None}}
    command = render_shell_command(
        "x {{ trigger.n }} {{ trigger.hosts }} {{ trigger.none }}", context
    )
    assert shlex.split(command) == ["x", "5", '["a b", "c"]', ""]


def test_template_logic_still_works_in_a_shell_command() -> None:
    context = {"trigger": {"hosts": ["web1", "web 2"]}}
    command = render_shell_command("ping {% for h in trigger.hosts %}{{ h }} {% endfor %}", context)
    assert shlex.split(command) == ["ping", "web1", "web 2"]


def test_only_the_command_of_a_shell_runner_is_quoted() -> None:
    parameters = {"cmd": "echo {{ trigger.x }}", "env": {"X": "{{ trigger.x }}"}, "n": 3}
    context = {"trigger": {"x": "a; b"}}
    shell = render_rule_parameters(parameters, context, shell_command=True)
    assert shell == {"cmd": "echo 'a; b'", "env": {"X": "a; b"}, "n": 3}
    plain = render_rule_parameters(parameters, context, shell_command=False)
    assert plain["cmd"] == "echo a; b"


def test_jinja_in_a_payload_is_not_evaluated() -> None:
    context = {"trigger": {"x": "{{ st2kv.system.secret }}"}, "st2kv": {"system": {"secret": "S"}}}
    rendered = render_rule_parameters({"message": "{{ trigger.x }}"}, context, shell_command=False)
    assert rendered == {"message": "{{ st2kv.system.secret }}"}


def test_a_lone_expression_keeps_its_type() -> None:
    rendered = render_rule_parameters(
        {"count": "{{ trigger.n }}", "labels": "{{ trigger.l }}"},
        {"trigger": {"n": 7, "l": {"a": 1}}},
        shell_command=False,
    )
    assert rendered == {"count": 7, "labels": {"a": 1}}


def test_an_undefined_name_names_the_parameter() -> None:
    with pytest.raises(ValidationError, match='Failed to render parameter "cmd"'):
        render_rule_parameters(
            {"cmd": "echo {{ trigger.missing.key }}"}, {"trigger": {}}, shell_command=True
        )


@pytest.mark.parametrize(
    "template",
    ["{{ trigger.labels.update({'severity': 'none'}) }}", "{{ trigger.targets.append(1) }}"],
)
def test_templates_cannot_change_the_data_they_read(template: str) -> None:
    trigger = {"labels": {"severity": "critical"}, "targets": []}
    context = {"trigger": trigger}
    with pytest.raises(ValidationError):
        render_rule_parameters({"x": template}, context, shell_command=False)
    with pytest.raises(ValidationError):
        render_rule_parameters({"cmd": f"echo {template}"}, context, shell_command=True)
    assert trigger == {"labels": {"severity": "critical"}, "targets": []}


def test_the_sandbox_refuses_unsafe_attribute_access() -> None:
    with pytest.raises(ValidationError):
        render_rule_parameters(
            {"x": "{{ trigger.__class__.__mro__ }}"}, {"trigger": {}}, shell_command=False
        )
