"""Action parameters with StackStorm's semantics.

The schema an execution is checked against is the runner's ``runner_parameters`` updated by
the action's ``parameters``. Live parameters are checked (no unknown names, no immutable
overrides), defaults filled in, templates rendered in dependency order (defaults may refer to
other parameters and to the datastore), values cast to their declared types, and the result
validated with JSON Schema. Messages match StackStorm's, as the ``st2`` CLI prints them.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from graphlib import CycleError, TopologicalSorter
from typing import Any

import jsonschema

from poundcake.engine.rendering import RenderError, is_template, referenced_names, render_value
from poundcake.exceptions import ValidationError

SECRET_MASK = "********"  # noqa: S105 - the mask shown instead of a secret
_EXTENSION_KEYS = frozenset({"position", "immutable", "secret", "required"})
_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "n"})

ParameterSchema = Mapping[str, Mapping[str, Any]]


def merge_schemas(
    runner_parameters: ParameterSchema, action_parameters: ParameterSchema
) -> dict[str, dict[str, Any]]:
    """Return the runner's parameter schema updated, field by field, by the action's."""
    merged = {name: dict(spec) for name, spec in runner_parameters.items()}
    for name, spec in action_parameters.items():
        merged[name] = {**merged.get(name, {}), **spec}
    return merged


def check_live_parameters(schema: ParameterSchema, live: Mapping[str, Any]) -> None:
    """Refuse unknown parameters and overrides of immutable ones."""
    unknown = [name for name in live if name not in schema]
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        verb = "was" if len(unknown) == 1 else "were"
        raise ValidationError(f"Additional properties are not allowed ({names} {verb} unexpected)")
    immutable = [name for name in live if schema[name].get("immutable")]
    if immutable:
        raise ValidationError(f"Override of immutable parameter(s) {immutable} is unsupported.")


def _cast(name: str, value: Any, declared: Any) -> Any:
    kind = declared[0] if isinstance(declared, list) and declared else declared
    if value is None or kind is None:
        return value
    try:
        if kind == "string":
            return (
                value
                if isinstance(value, str)
                else (json.dumps(value) if isinstance(value, (dict, list)) else str(value))
            )
        if not isinstance(value, str):
            if kind == "integer" and isinstance(value, float) and value.is_integer():
                return int(value)
            return value
        text = value.strip()
        if kind == "integer":
            return int(text)
        if kind == "number":
            number = float(text)
            return int(number) if number.is_integer() and "." not in text else number
        if kind == "boolean":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if kind == "array":
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",")] if text else []
        if kind == "object":
            return json.loads(text)
    except (ValueError, json.JSONDecodeError):
        raise ValidationError(f"Parameter {name!r}: {value!r} is not a valid {kind}") from None
    return value


def _json_schema(schema: ParameterSchema) -> dict[str, Any]:
    properties = {
        name: {key: item for key, item in spec.items() if key not in _EXTENSION_KEYS}
        for name, spec in schema.items()
    }
    required = [name for name, spec in schema.items() if spec.get("required") is True]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _render_order(values: Mapping[str, Any]) -> list[str]:
    graph: dict[str, set[str]] = {}
    for name, value in values.items():
        templates = _templates_in(value)
        graph[name] = {
            ref for template in templates for ref in referenced_names(template)
        } & values.keys()
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        cycle = " -> ".join(str(node) for node in error.args[1])
        raise RenderError(f"Cyclic dependency found between parameters: {cycle}") from None


def _templates_in(value: Any) -> list[str]:
    if is_template(value):
        return [value]
    if isinstance(value, list):
        return [t for item in value for t in _templates_in(item)]
    if isinstance(value, dict):
        return [t for pair in value.items() for item in pair for t in _templates_in(item)]
    return []


def resolve_parameters(
    schema: ParameterSchema,
    live: Mapping[str, Any],
    context: Mapping[str, Any],
    *,
    literal: Collection[str] = (),
) -> dict[str, Any]:
    """Fill defaults, render templates in dependency order, cast and validate.

    ``context`` holds what templates may use besides other parameters: ``st2kv``,
    ``action_context``, ``config_context`` and, for rules, ``trigger``. Values named in
    ``literal`` are final already (rendered once when the execution was requested) and are
    never rendered again, so text that came from a trigger payload or the datastore stays text.
    """
    values: dict[str, Any] = {}
    for name, spec in schema.items():
        if name in live:
            values[name] = live[name]
        elif "default" in spec:
            values[name] = spec["default"]
    for name, spec in schema.items():
        if spec.get("required") is True and values.get(name) is None:
            raise ValidationError(f"'{name}' is a required property")
    rendered: dict[str, Any] = {
        name: _cast(name, values[name], schema[name].get("type"))
        for name in literal
        if name in values
    }
    fixed = set(literal)
    for name in _render_order({k: v for k, v in values.items() if k not in fixed}):
        value = values[name]
        if _templates_in(value):
            value = render_value(value, {**context, **rendered})
        rendered[name] = _cast(name, value, schema[name].get("type"))
    final = {
        name: value
        for name, value in rendered.items()
        if value is not None or schema[name].get("required") is True
    }
    validate_parameters(schema, final)
    return final


def validate_parameters(schema: ParameterSchema, values: Mapping[str, Any]) -> None:
    """Validate final values against the schema; raise with jsonschema's message."""
    validator = jsonschema.Draft7Validator(_json_schema(schema))
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(values)))
    if error is not None:
        raise ValidationError(error.message)


def split_parameters(
    runner_schema: ParameterSchema, values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split final values into the runner's parameters and the action's."""
    runner = {name: value for name, value in values.items() if name in runner_schema}
    action = {name: value for name, value in values.items() if name not in runner_schema}
    return runner, action


def secret_names(schema: ParameterSchema) -> set[str]:
    """Return the names of parameters marked ``secret: true``."""
    return {name for name, spec in schema.items() if spec.get("secret")}


def mask_secrets(values: Mapping[str, Any], schema: ParameterSchema) -> dict[str, Any]:
    """Return a copy of ``values`` with every secret parameter replaced by ``********``."""
    secrets = secret_names(schema)
    return {name: SECRET_MASK if name in secrets else value for name, value in values.items()}
