"""Who may answer an inquiry, and whether an answer fits its schema (StackStorm's rules).

The permission check is StackStorm's: ``users`` (when not empty) must name the responder, and
``roles`` (when not empty) must hold one of the responder's roles. The engine has no RBAC, so
it does what StackStorm does with RBAC disabled: every user holds every role, and ``roles``
never refuses anyone.

A response is validated as StackStorm's ``schema_utils.validate`` does with ``use_default`` and
``allow_default_none``: draft 4 with ``required: true`` inside properties (the engine's pack
schema rules), defaults filled in for missing or null properties first, and an optional
property, or one whose default is null, also accepting null. The response is stored as given.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import jsonschema

from poundcake.engine.packs.errors import FieldError
from poundcake.engine.packs.schema import apply_defaults, validate
from poundcake.exceptions import PermissionDeniedError, ValidationError

_CHOICES = ("anyOf", "oneOf")


def check_permission(
    inquiry_id: str,
    result: Mapping[str, Any],
    user: str,
    user_roles: Collection[str] | None = None,
) -> None:
    """Refuse ``user`` unless the inquiry's ``users`` and ``roles`` let them respond.

    ``user_roles`` None means RBAC is off: every user holds every role, as in StackStorm.
    """
    users = result.get("users") or []
    roles = result.get("roles") or []
    roles_pass = not roles or user_roles is None or bool(set(roles) & set(user_roles))
    if (users and user not in users) or not roles_pass:
        raise PermissionDeniedError(
            f'User "{user}" does not have permission to respond to inquiry "{inquiry_id}".'
        )


def validate_response(inquiry_id: str, schema: Mapping[str, Any], response: Any) -> None:
    """Raise StackStorm's 400 message unless ``response`` fits the inquiry's ``schema``."""
    prefix = f'Response for inquiry "{inquiry_id}" did not pass schema validation.'
    if not isinstance(response, dict):
        raise ValidationError(f"{prefix} {response!r} is not of type 'object'")
    checked = nullable_optionals(schema)
    instance = apply_defaults(response, checked) if checked.get("type") == "object" else response
    try:
        validate(instance, checked, "")
    except FieldError as error:
        raise ValidationError(f"{prefix} {error}") from None
    except (jsonschema.SchemaError, jsonschema.exceptions.UnknownType) as error:
        raise ValidationError(f"{prefix} The inquiry's schema is invalid: {error}") from None


def nullable_optionals(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an object schema in which each optional property, and each property whose
    default is null, also accepts null (nested objects and arrays of objects too)."""
    copied = dict(schema)
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return copied
    listed = schema.get("required")
    required_names = set(listed) if isinstance(listed, list) else set()
    changed: dict[str, Any] = {}
    for name, sub in properties.items():
        if not isinstance(sub, Mapping):
            changed[name] = sub
            continue
        spec = dict(sub)
        required = spec.get("required") is True or name in required_names
        if ("default" in spec or not required) and spec.get("default") is None:
            spec = _accepting_null(spec)
        if isinstance(spec.get("properties"), Mapping):
            spec = nullable_optionals(spec)
        items = spec.get("items")
        if isinstance(items, Mapping) and isinstance(items.get("properties"), Mapping):
            spec["items"] = nullable_optionals(items)
        changed[name] = spec
    copied["properties"] = changed
    return copied


def _accepting_null(spec: dict[str, Any]) -> dict[str, Any]:
    for key in _CHOICES:
        choices = spec.get(key)
        if isinstance(choices, list):
            if not any(isinstance(c, Mapping) and c.get("type") == "null" for c in choices):
                spec[key] = [*choices, {"type": "null"}]
            return spec
    declared = spec.get("type")
    if isinstance(declared, str) and declared != "null":
        spec["type"] = [declared, "null"]
    elif isinstance(declared, list) and "null" not in declared:
        spec["type"] = [*declared, "null"]
    return spec
