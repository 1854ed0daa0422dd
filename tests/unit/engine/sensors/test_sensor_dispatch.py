"""Which dispatched payloads a sensor's dispatcher accepts: StackStorm's validation rules."""

from __future__ import annotations

from typing import Any

import pytest

from poundcake.engine.sensors.dispatch import ResolvedTrigger, payload_problem

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"n": {"type": "integer", "required": True}},
}


def acceptable(trigger_type: str, payload: Any, *, validate_payload: bool) -> bool:
    resolved = ResolvedTrigger(ref=trigger_type, type=trigger_type, payload_schema=SCHEMA)
    return payload_problem(resolved, payload, validate_payload=validate_payload) is None


@pytest.mark.parametrize("validate_payload", [True, False])
def test_a_valid_payload_is_dispatched(validate_payload: bool) -> None:
    assert acceptable("pack.event", {"n": 1}, validate_payload=validate_payload)


def test_an_invalid_payload_is_refused_when_validation_is_on() -> None:
    resolved = ResolvedTrigger(ref="pack.event", type="pack.event", payload_schema=SCHEMA)
    problem = payload_problem(resolved, {"n": "one"}, validate_payload=True)
    assert problem == "payload.n: 'one' is not of type 'integer'"
    assert not acceptable("pack.event", {}, validate_payload=True)
    assert not acceptable("pack.event", ["not", "an", "object"], validate_payload=True)


def test_an_invalid_payload_is_dispatched_when_validation_is_off() -> None:
    assert acceptable("pack.event", {"n": "one"}, validate_payload=False)


def test_the_engines_own_trigger_types_are_always_validated() -> None:
    assert not acceptable("core.st2.sensor.process_exit", {"n": "x"}, validate_payload=False)


def test_a_trigger_type_without_a_payload_schema_takes_any_payload() -> None:
    resolved = ResolvedTrigger(ref="pack.any", type="pack.any", payload_schema={})
    assert payload_problem(resolved, {"anything": [1, 2]}, validate_payload=True) is None
