"""Who may answer an inquiry, and which answers fit its schema (StackStorm's rules)."""

from __future__ import annotations

from typing import Any

import pytest

from poundcake.engine.inquiries.responses import (
    check_permission,
    nullable_optionals,
    validate_response,
)
from poundcake.engine.runners.inquirer.runner import DEFAULT_SCHEMA
from poundcake.exceptions import PermissionDeniedError, ValidationError

INQUIRY = "6b1620000000000000000001"
PREFIX = f'Response for inquiry "{INQUIRY}" did not pass schema validation.'


def refusal(schema: dict[str, Any], response: Any) -> str:
    with pytest.raises(ValidationError) as raised:
        validate_response(INQUIRY, schema, response)
    message = str(raised.value)
    assert message.startswith(PREFIX), message
    return message.removeprefix(PREFIX).strip()


# --- permission -------------------------------------------------------------------------------


def test_without_users_anyone_may_respond() -> None:
    check_permission(INQUIRY, {"users": [], "roles": []}, "anyone")
    check_permission(INQUIRY, {}, "anyone")


def test_users_name_who_may_respond() -> None:
    result = {"users": ["ann", "bob"], "roles": []}
    check_permission(INQUIRY, result, "bob")
    with pytest.raises(PermissionDeniedError) as refused:
        check_permission(INQUIRY, result, "eve")
    assert str(refused.value) == (
        f'User "eve" does not have permission to respond to inquiry "{INQUIRY}".'
    )
    assert refused.value.http_status == 403


def test_roles_refuse_nobody_without_rbac() -> None:
    # StackStorm with RBAC disabled: every user holds every role.
    check_permission(INQUIRY, {"users": [], "roles": ["approvers"]}, "eve")
    with pytest.raises(PermissionDeniedError):
        check_permission(INQUIRY, {"users": ["ann"], "roles": ["approvers"]}, "eve")


# --- the response against the schema -----------------------------------------------------------


def test_the_default_schema_wants_a_boolean_continue() -> None:
    validate_response(INQUIRY, DEFAULT_SCHEMA, {"continue": True})
    assert refusal(DEFAULT_SCHEMA, {}) == "'continue' is a required property"
    assert refusal(DEFAULT_SCHEMA, {"continue": "yes"}) == (
        "continue: 'yes' is not of type 'boolean'"
    )
    assert refusal(DEFAULT_SCHEMA, {"continue": None}) == (
        "continue: None is not of type 'boolean'"
    )


def test_a_response_must_be_an_object() -> None:
    assert refusal(DEFAULT_SCHEMA, ["continue"]) == "['continue'] is not of type 'object'"


def test_required_true_and_required_lists_both_count() -> None:
    schema = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "code": {"type": "integer", "required": True},
        },
    }
    validate_response(INQUIRY, schema, {"name": "x", "code": 3})
    assert refusal(schema, {"code": 3}) == "'name' is a required property"
    assert refusal(schema, {"name": "x"}) == "'code' is a required property"


def test_a_default_fills_a_required_property() -> None:
    schema = {
        "type": "object",
        "properties": {"level": {"type": "integer", "default": 2, "required": True}},
    }
    validate_response(INQUIRY, schema, {})
    validate_response(INQUIRY, schema, {"level": None})
    assert refusal(schema, {"level": "high"}) == "level: 'high' is not of type 'integer'"


def test_optional_properties_accept_null() -> None:
    schema = {
        "type": "object",
        "properties": {
            "note": {"type": "string"},
            "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "nested": {
                "type": "object",
                "properties": {"inner": {"type": "string"}, "must": {"required": True}},
            },
        },
    }
    validate_response(INQUIRY, schema, {"note": None, "either": None, "nested": {"must": 1}})
    validate_response(INQUIRY, schema, {"nested": {"inner": None, "must": 1}})
    assert refusal(schema, {"nested": {}}) == "nested: 'must' is a required property"
    assert refusal(schema, {"either": 1.5}) == (
        "either: 1.5 is not valid under any of the given schemas"
    )


def test_constraints_and_additional_properties_hold() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "answer": {"type": "string", "enum": ["yes", "no"], "required": True},
            "count": {"type": "integer", "minimum": 1},
        },
    }
    validate_response(INQUIRY, schema, {"answer": "no", "count": 1})
    assert refusal(schema, {"answer": "maybe"}) == "answer: 'maybe' is not one of ['yes', 'no']"
    assert refusal(schema, {"answer": "yes", "count": 0}) == (
        "count: 0 is less than the minimum of 1"
    )
    assert "'extra' was unexpected" in refusal(schema, {"answer": "yes", "extra": 1})


def test_nullable_optionals_leaves_required_properties_alone() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kept": {"type": "string", "required": True},
            "loose": {"type": ["string", "integer"]},
            "nulled": {"type": "string", "default": None, "required": True},
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"x": {"type": "integer"}}},
            },
        },
    }
    changed = nullable_optionals(schema)["properties"]
    assert changed["kept"] == {"type": "string", "required": True}
    assert changed["loose"]["type"] == ["string", "integer", "null"]
    assert changed["nulled"]["type"] == ["string", "null"]
    assert changed["items"]["items"]["properties"]["x"]["type"] == ["integer", "null"]
    assert schema["properties"]["loose"]["type"] == ["string", "integer"]
