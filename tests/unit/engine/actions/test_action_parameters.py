"""Action parameters resolved as StackStorm resolves them: defaults, templates and their order."""

from __future__ import annotations

from typing import Any

from poundcake.engine.actions.parameters import resolve_parameters
from poundcake.engine.rendering import render_value


def test_templates_in_object_keys_are_rendered_after_the_parameters_they_name() -> None:
    """As the examples pack's winrm_powershell_env: an env key named by another parameter."""
    schema: dict[str, Any] = {
        "env": {"type": "object", "default": {"{{ variable }}": "set", "FIXED": "{{ variable }}"}},
        "variable": {"type": "string", "default": "ST2_{{ suffix }}"},
        "suffix": {"type": "string", "default": "TEST"},
    }
    resolved = resolve_parameters(schema, {}, {})
    assert resolved["env"] == {"ST2_TEST": "set", "FIXED": "ST2_TEST"}
    given = resolve_parameters(schema, {"variable": "MINE"}, {}, literal={"variable"})
    assert given["env"] == {"MINE": "set", "FIXED": "MINE"}


def test_a_rendered_key_is_always_text() -> None:
    assert render_value({"{{ number }}": 1, "plain": 2}, {"number": 5}) == {"5": 1, "plain": 2}
