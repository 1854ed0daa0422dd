"""Checking CABs against the engine: every step's action exists and declares its parameters.

A CAB naming an unknown action, giving a parameter the action does not declare, leaving out a
required one, or setting an immutable one is refused before anything is written, with the file
and field named. Expected results are checked by the ``steps`` runner's own definition loader,
so a CAB the engine would refuse at run time is refused at load time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from poundcake.engine.public import merge_schemas, parse_steps
from poundcake.exceptions import ValidationError
from poundcake.remediation.cabs.definition import Cab, CabError
from poundcake.remediation.cabs.pack import workflow_document


class ActionLookup(Protocol):
    """What validation needs from the engine (its HTTP API, or a fake in tests)."""

    def get_action(self, ref: str) -> dict[str, Any] | None: ...

    def get_runner_type(self, name: str) -> dict[str, Any] | None: ...


def _where(cab: Cab, field_name: str) -> str:
    return f"{cab.source}: {field_name}" if cab.source else field_name


def _check_parameters(
    cab: Cab, index: int, given: Mapping[str, Any], schema: Mapping[str, Any], action_ref: str
) -> None:
    here = f"steps[{index}].parameters"
    for name in given:
        if name not in schema:
            declared = ", ".join(sorted(schema)) or "none"
            raise CabError(
                _where(cab, f"{here}.{name}")
                + f': action "{action_ref}" does not declare this parameter (it has: {declared})'
            )
        if schema[name].get("immutable"):
            raise CabError(
                _where(cab, f"{here}.{name}") + f': is immutable in action "{action_ref}"'
            )
    for name, spec in schema.items():
        if spec.get("required") is True and "default" not in spec and name not in given:
            raise CabError(
                _where(cab, f"{here}.{name}") + f': is required by action "{action_ref}"'
            )


def validate_cab(cab: Cab, engine_api: ActionLookup) -> None:
    """Raise CabError unless every step's action exists and accepts the step's parameters."""
    for index, step in enumerate(cab.steps):
        action = engine_api.get_action(step.action)
        if action is None:
            raise CabError(
                _where(cab, f"steps[{index}].action")
                + f': action "{step.action}" does not exist in the engine'
            )
        if action.get("enabled") is False:
            raise CabError(
                _where(cab, f"steps[{index}].action") + f': action "{step.action}" is disabled'
            )
        runner_name = str(action.get("runner_type") or "")
        runner = engine_api.get_runner_type(runner_name) or {}
        schema = merge_schemas(
            runner.get("runner_parameters") or {}, action.get("parameters") or {}
        )
        _check_parameters(cab, index, step.parameters, schema, step.action)
    try:
        parse_steps(workflow_document(cab), source=cab.source or cab.name)
    except ValidationError as error:
        raise CabError(str(error)) from None
