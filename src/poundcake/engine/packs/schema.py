"""JSON Schema as StackStorm pack metadata writes it.

Pack metadata mixes draft 3 and draft 4: ``required: true`` on a property (draft 3) next to
``required: [...]`` lists (draft 4), plus StackStorm's own keywords ``position``, ``immutable``
and ``secret``. Here such schemas are checked, converted to draft 4 for validation, and used to
fill in defaults the way StackStorm does (a missing or null property takes its default, nested
objects and arrays of objects included).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import jsonschema
from jsonschema import Draft4Validator

from poundcake.engine.packs.errors import FieldError

SIMPLE_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")
PARAMETER_NAME = re.compile(r"^\w+$")
STACKSTORM_KEYWORDS = frozenset({"required", "immutable", "secret", "position"})
# Draft 4 keywords StackStorm accepts in an action parameter, plus its own: StackStorm's
# action_params.json. ``format`` is not among them, so it is refused, as StackStorm refuses it.
PARAMETER_KEYWORDS = STACKSTORM_KEYWORDS | frozenset(
    {
        "id",
        "$schema",
        "title",
        "description",
        "default",
        "type",
        "enum",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "items",
        "additionalItems",
        "maxItems",
        "minItems",
        "uniqueItems",
        "properties",
        "patternProperties",
        "additionalProperties",
        "maxProperties",
        "minProperties",
        "dependencies",
        "definitions",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
    }
)
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SUBSCHEMA_KEYS = ("items", "additionalItems", "additionalProperties", "not")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_TEMPLATE = re.compile(r"{{|{%")


def to_draft4(schema: Any) -> Any:
    """Return a draft 4 copy of ``schema``: boolean ``required`` moves to the parent's list."""
    if not isinstance(schema, Mapping):
        return copy.deepcopy(schema)
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "required" and isinstance(value, bool):
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            converted[key] = {name: to_draft4(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA_KEYS:
            converted[key] = (
                [to_draft4(sub) for sub in value] if isinstance(value, list) else to_draft4(value)
            )
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            converted[key] = [to_draft4(sub) for sub in value]
        elif key == "dependencies" and isinstance(value, Mapping):
            converted[key] = {
                name: to_draft4(sub) if isinstance(sub, Mapping) else copy.deepcopy(sub)
                for name, sub in value.items()
            }
        else:
            converted[key] = copy.deepcopy(value)
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        listed = schema.get("required")
        names = list(listed) if isinstance(listed, list) else []
        names += [
            name
            for name, sub in properties.items()
            if isinstance(sub, Mapping) and sub.get("required") is True and name not in names
        ]
        if names:
            converted["required"] = names
    declared = schema.get("type")
    if "default" in schema and schema["default"] is None and isinstance(declared, str):
        converted["type"] = [declared, "null"]
    return converted


def object_schema(properties: Mapping[str, Any], *, additional: bool = True) -> dict[str, Any]:
    """Return the object schema whose properties are a parameter map (``name -> schema``)."""
    normalised = {name: (spec or {}) for name, spec in properties.items()}
    return {"type": "object", "properties": normalised, "additionalProperties": additional}


def _dotted(prefix: str, path: Any) -> str:
    parts = [prefix, *(str(part) for part in path)]
    return ".".join(part for part in parts if part)


def check_schema(schema: Any, field: str) -> None:
    """Raise :class:`FieldError` unless ``schema`` is a valid (draft 3/4 mixed) JSON schema."""
    if not isinstance(schema, Mapping):
        raise FieldError(field, f"must be a mapping (a JSON schema), not {type_name(schema)}")
    try:
        Draft4Validator.check_schema(to_draft4(schema))
    except jsonschema.SchemaError as error:
        raise FieldError(_dotted(field, error.path), error.message) from None


def check_parameters(parameters: Any, field: str = "parameters") -> dict[str, Any]:
    """Check an action's parameter map as StackStorm does; return it unchanged."""
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise FieldError(
            field, f"must be a mapping of parameter names, not {type_name(parameters)}"
        )
    for name, spec in parameters.items():
        where = f"{field}.{name}" if field else str(name)
        if not isinstance(name, str) or not PARAMETER_NAME.match(name):
            raise FieldError(where, "a parameter name may contain only letters, digits and _")
        if not isinstance(spec, Mapping):
            raise FieldError(where, f"must be a mapping, not {type_name(spec)}")
        unknown = sorted(str(key) for key in spec if key not in PARAMETER_KEYWORDS)
        if unknown:
            raise FieldError(f"{where}.{unknown[0]}", "is not a parameter attribute")
        _check_parameter_keywords(spec, where)
        check_schema(spec, where)
    return dict(parameters)


def _check_parameter_keywords(spec: Mapping[str, Any], where: str) -> None:
    declared = spec.get("type")
    if declared is not None and declared not in SIMPLE_TYPES:
        raise FieldError(f"{where}.type", f"{declared!r} is not one of {', '.join(SIMPLE_TYPES)}")
    for flag in ("required", "immutable", "secret"):
        if flag in spec and not isinstance(spec[flag], bool):
            raise FieldError(f"{where}.{flag}", f"must be true or false, not {spec[flag]!r}")
    if "position" in spec:
        position = spec["position"]
        whole = isinstance(position, int) or (isinstance(position, float) and position.is_integer())
        if isinstance(position, bool) or not whole or position < 0:
            raise FieldError(f"{where}.position", f"must be a whole number >= 0, not {position!r}")


def apply_defaults(instance: Any, schema: Mapping[str, Any]) -> Any:
    """Return a copy of ``instance`` with the schema's defaults for missing or null properties."""
    if isinstance(instance, Mapping):
        properties = schema.get("properties")
        result = dict(instance)
        if not isinstance(properties, Mapping):
            return result
        for name, sub in properties.items():
            if not isinstance(sub, Mapping):
                continue
            if result.get(name) is None and "default" in sub:
                result[name] = copy.deepcopy(sub["default"])
            if result.get(name) is not None and _has_nested_defaults(sub):
                result[name] = apply_defaults(result[name], sub)
        return result
    if isinstance(instance, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            return [apply_defaults(item, items) for item in instance]
    return instance


def config_with_defaults(
    values: Mapping[str, Any] | None, attributes: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A pack's config as actions see it: the stored values, with the schema's defaults for
    what they leave out (all of them for a pack without a config file, as in StackStorm)."""
    if attributes is None:
        return dict(values or {})
    return dict(apply_defaults(dict(values or {}), object_schema(attributes)))


def _has_nested_defaults(schema: Mapping[str, Any]) -> bool:
    items = schema.get("items")
    return isinstance(schema.get("properties"), Mapping) or (
        isinstance(items, Mapping) and isinstance(items.get("properties"), Mapping)
    )


def is_template(value: Any) -> bool:
    """Tell whether ``value`` is a Jinja expression, resolved only when it is used."""
    return isinstance(value, str) and bool(_TEMPLATE.search(value))


def validate(
    instance: Any, schema: Mapping[str, Any], field: str, *, allow_templates: bool = False
) -> None:
    """Raise :class:`FieldError` for the first place ``instance`` breaks ``schema``.

    With ``allow_templates``, a Jinja expression stands in for any value (it is rendered later).
    """
    validator = Draft4Validator(to_draft4(schema))
    errors = [
        error
        for error in validator.iter_errors(instance)
        if not (allow_templates and is_template(error.instance))
    ]
    if errors:
        first = min(errors, key=lambda error: [str(part) for part in error.absolute_path])
        raise FieldError(_dotted(field, first.absolute_path), first.message)


def type_name(value: Any) -> str:
    """Name a YAML value's type the way a pack author thinks of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__
