"""The ``inquirer`` runner: StackStorm's metadata, and a run that ends waiting for a response."""

from __future__ import annotations

from typing import Any

import pytest

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.packs.errors import FieldError
from poundcake.engine.runners.base import RunnerRequest
from poundcake.engine.runners.inquirer.runner import DEFAULT_SCHEMA, InquirerRunner
from poundcake.engine.runners.registry import runner_class, runner_types


def request(runner_parameters: dict[str, Any]) -> RunnerRequest:
    return RunnerRequest(
        execution_id="e1",
        action_ref="core.ask",
        pack="core",
        runner_type="inquirer",
        runner_parameters=runner_parameters,
    )


def test_runner_parameters_are_stackstorms() -> None:
    spec = runner_types()["inquirer"]
    assert spec.enabled and runner_class("inquirer") is InquirerRunner
    parameters = spec.runner_parameters
    assert sorted(parameters) == ["roles", "route", "schema", "ttl", "users"]
    assert parameters["schema"]["default"] == DEFAULT_SCHEMA
    assert (parameters["schema"]["type"], parameters["schema"]["required"]) == ("object", True)
    assert (parameters["route"]["type"], parameters["route"]["default"]) == ("string", "")
    assert (parameters["roles"]["type"], parameters["roles"]["default"]) == ("array", [])
    assert (parameters["users"]["type"], parameters["users"]["default"]) == ("array", [])
    assert parameters["ttl"] == {
        "default": 1440,
        "required": True,
        "description": "Time (in minutes) to wait before timing out the inquiry if no response "
        "is received",
        "type": "integer",
    }


def test_a_run_ends_pending_with_what_a_response_needs() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    runner = InquirerRunner(
        request({"schema": schema, "roles": [], "users": ["ann"], "route": "ops", "ttl": 5}),
        lambda kind, data: None,
    )
    runner.pre_run()
    outcome = runner.run()
    assert outcome.status == ExecutionStatus.PENDING
    assert outcome.result == {
        "schema": schema,
        "roles": [],
        "users": ["ann"],
        "route": "ops",
        "ttl": 5,
    }


def test_without_parameters_the_defaults_apply() -> None:
    outcome = InquirerRunner(request({}), lambda kind, data: None).run()
    assert outcome.result == {
        "schema": DEFAULT_SCHEMA,
        "roles": [],
        "users": [],
        "route": "",
        "ttl": 1440,
    }


def test_a_schema_that_is_no_json_schema_is_refused() -> None:
    runner = InquirerRunner(request({"schema": {"type": "strange"}}), lambda kind, data: None)
    with pytest.raises(FieldError, match=r"^schema\.type: "):
        runner.pre_run()
