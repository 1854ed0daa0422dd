"""The rendering every runner's parameters go through: values stay data, templates stay sandboxed.

Rules (``render_rule_parameters``) and the steps runner render shell commands with
:func:`render_shell_command` and every other parameter with :func:`render_value`. Here thousands
of hostile values go through both, and each rendered command runs in a real ``bash`` and ``sh``:
it prints the value byte for byte and never touches the canary. Template authors' attempts to
leave the Jinja sandbox fail with a :class:`RenderError`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from poundcake.engine.rendering import RenderError, render_shell_command, render_value
from poundcake.engine.rules.enforcer import render_rule_parameters
from tests.security.hostile import VALUES, with_canary

RENDERING = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def context(first: str, second: str) -> dict[str, Any]:
    alert = {"labels": {"first": first}, "annotations": {"second": second}}
    return {"alert": alert, "trigger": alert, "request_id": "req-1"}


def run_shell(shell: str, command: str) -> bytes:
    completed = subprocess.run([shell, "-c", command], capture_output=True, timeout=30, check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@RENDERING
@given(first=VALUES, second=VALUES)
def test_a_rendered_shell_command_prints_the_values_verbatim(
    tmp_path: Path, first: str, second: str
) -> None:
    canary = tmp_path / "pwned"
    first, second = with_canary(first, canary), with_canary(second, canary)
    template = "printf '<%s|%s>' {{ alert.labels.first }} {{ alert.annotations.second }}"
    rule = render_rule_parameters(
        {"cmd": template.replace("alert.", "trigger.")}, context(first, second), shell_command=True
    )
    step = render_shell_command(template, context(first, second))
    assert rule["cmd"] == step
    for shell in ("bash", "sh"):
        assert run_shell(shell, step) == f"<{first}|{second}>".encode()
    assert not canary.exists()


@RENDERING
@given(first=VALUES, second=VALUES)
def test_other_parameters_receive_the_values_unrendered(first: str, second: str) -> None:
    parameters = {
        "value": "{{ alert.labels.first }}",
        "nested": {"list": ["{{ alert.annotations.second }}", "x {{ alert.labels.first }} y"]},
    }
    rendered = render_value(parameters, context(first, second))
    assert rendered == {"value": first, "nested": {"list": [second, f"x {first} y"]}}


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ alert.__class__ }}",
        "{{ alert.labels.first.__class__.__base__ }}",
        "{{ cycler.__init__.__globals__.os.system('id') }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ '{0.__class__}'.format(alert) }}",
        "{{ range(10 ** 9) | list }}",
        "{{ 1 / 0 }}",
    ],
)
@pytest.mark.parametrize("shell", [True, False])
def test_templates_cannot_leave_the_sandbox(template: str, shell: bool) -> None:
    render = render_shell_command if shell else render_value
    with pytest.raises(RenderError, match="failed to render"):
        render(f"echo {template}", context("a", "b"))


def test_the_canary_catches_a_command_rendered_without_quoting(tmp_path: Path) -> None:
    # The control: the same value rendered as plain text does run the attacker's command.
    canary = tmp_path / "pwned"
    value = with_canary("$(touch CANARY)", canary)
    command = render_value("printf '<%s>' {{ alert.labels.first }}", context(value, ""))
    run_shell("sh", command)
    assert canary.exists()
