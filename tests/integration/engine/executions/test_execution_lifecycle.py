"""Executions through the real scheduler and action runner, on MariaDB and RabbitMQ."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from poundcake.db.session import unit_of_work
from poundcake.engine.actionrunner.request import build_request, load_claimed
from poundcake.engine.api.app import create_app
from poundcake.engine.auth.service import create_api_key
from poundcake.engine.executions.models import LiveActionDB
from poundcake.engine.executions.service import (
    BATCHED_RESULT_LIMIT,
    FinalOutcome,
    cancel_execution,
    claim,
    complete_many,
    schedule,
    transition,
)
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.packs.models import ConfigSchemaDB
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.exceptions import ValidationError
from poundcake.ids import new_id
from tests import factories
from tests.integration.support.engine_stack import EngineStack, engine_stack

NOOP_PARAMETERS = {
    "message": {"type": "string", "required": True},
    "count": {"type": "integer", "default": 3},
    "note": {"type": "string", "default": "{{ message }} x{{ count }}"},
    "locked": {"type": "boolean", "default": False, "immutable": True},
    "token": {"type": "string", "secret": True},
}


@pytest.fixture
def stack(tmp_path: Path, scratch_database: str) -> Iterator[EngineStack]:
    with engine_stack(tmp_path, scratch_database) as running:
        with unit_of_work(running.runtime.sessions) as session:
            factories.runner_type(session, "noop")
            factories.pack(session, "tests")
            factories.action(session, "tests.noop", "noop", NOOP_PARAMETERS)
            factories.action(session, "tests.off", "noop", enabled=False)
        yield running


def test_noop_goes_through_every_status(stack: EngineStack) -> None:
    stack.start_scheduler()
    stack.start_runner()
    requested = stack.request("tests.noop", {"message": "hi", "count": "5"})
    done = stack.wait(requested.execution_id)
    assert done.status == "succeeded"
    assert [entry["status"] for entry in done.log] == [
        "requested",
        "scheduled",
        "running",
        "succeeded",
    ]
    assert done.result == {
        "failed": False,
        "succeeded": True,
        "return_code": 0,
        "stdout": "",
        "stderr": "",
    }
    assert done.parameters == {"message": "hi", "count": 5}
    assert done.action_snapshot["ref"] == "tests.noop"
    assert done.runner["name"] == "noop"
    assert done.end_timestamp is not None and done.end_timestamp >= done.start_timestamp
    assert done.context["user"] == "tester"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"message": "x", "bogus": 1},
            "Additional properties are not allowed ('bogus' was unexpected)",
        ),
        (
            {"message": "x", "locked": True},
            "Override of immutable parameter(s) ['locked'] is unsupported.",
        ),
        ({}, "'message' is a required property"),
        ({"message": "x", "count": "many"}, "Parameter 'count': 'many' is not a valid integer"),
    ],
)
def test_bad_parameters_are_refused_with_stackstorm_messages(
    stack: EngineStack, parameters: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        stack.request("tests.noop", parameters)
    assert str(raised.value) == message


def test_unknown_and_disabled_actions_are_refused(stack: EngineStack) -> None:
    with pytest.raises(ValidationError, match=re.escape('Action "tests.nope" cannot be found.')):
        stack.request("tests.nope")
    disabled = 'Unable to execute. Action "tests.off" is disabled.'
    with pytest.raises(ValidationError, match=re.escape(disabled)):
        stack.request("tests.off")


def test_config_context_has_the_schema_defaults_without_a_config_file(
    stack: EngineStack,
) -> None:
    # StackStorm's fixtures.render_config_context defaults a parameter to
    # {{ config_context.config_item_one }}, which only the pack's config schema defines.
    with unit_of_work(stack.runtime.sessions) as session:
        schema = {"config_item_one": {"type": "string", "default": "Testing"}}
        session.add(ConfigSchemaDB(id=new_id(), pack="tests", attributes=schema))
        parameters = {
            "value1": {"type": "string", "default": "{{ config_context.config_item_one }}"}
        }
        factories.action(session, "tests.configured", "noop", parameters)
    requested = stack.request("tests.configured")
    with unit_of_work(stack.runtime.sessions) as session:
        work = load_claimed(session, [requested.liveaction_id])[requested.liveaction_id]
        assert work.config == {"config_item_one": "Testing"}
        assert build_request(session, work).action_parameters == {"value1": "Testing"}


def test_cancel_before_scheduling_cancels_at_once(stack: EngineStack) -> None:
    requested = stack.request("tests.noop", {"message": "later"})
    with unit_of_work(stack.runtime.sessions) as session:
        outcome = cancel_execution(session, requested.execution_id, user="tester")
    assert outcome.refused is None
    stack.start_scheduler()
    stack.start_runner()
    canceled = stack.wait(requested.execution_id)
    assert canceled.status == "canceled"
    assert canceled.result == {"message": "Action canceled by user.", "user": "tester"}
    with unit_of_work(stack.runtime.sessions) as session:
        again = cancel_execution(session, requested.execution_id, user="tester")
    assert again.refused is None


def test_cancel_of_a_finished_execution_is_refused(stack: EngineStack) -> None:
    stack.start_scheduler()
    stack.start_runner()
    requested = stack.request("tests.noop", {"message": "hi"})
    stack.wait(requested.execution_id)
    with unit_of_work(stack.runtime.sessions) as session:
        outcome = cancel_execution(session, requested.execution_id, user="tester")
    assert outcome.refused == "Action cannot be canceled. State = succeeded."


def test_lost_requested_message_is_found_by_the_sweep(stack: EngineStack) -> None:
    from poundcake.engine.executions.service import request_execution

    with unit_of_work(stack.runtime.sessions) as session:
        requested = request_execution(
            session, action_ref="tests.noop", parameters={"message": "m"}, user="t"
        )
    stack.start_scheduler()
    stack.start_runner()
    assert stack.wait(requested.execution_id, timeout=30).status == "succeeded"


def test_many_executions_with_two_runners(stack: EngineStack) -> None:
    stack.start_scheduler()
    stack.start_runner()
    stack.start_runner()
    ids = [stack.request("tests.noop", {"message": str(i)}).execution_id for i in range(60)]
    statuses = {stack.wait(execution_id).status for execution_id in ids}
    assert statuses == {"succeeded"}


def test_outcomes_recorded_together_keep_each_result_and_skip_what_left_the_lease(
    stack: EngineStack,
) -> None:
    ids = [stack.request("tests.noop", {"message": f"m{n}"}) for n in range(5)]
    large = {"stdout": "x" * (BATCHED_RESULT_LIMIT + 10)}
    with unit_of_work(stack.runtime.sessions) as session:
        for item in ids:
            assert schedule(session, item.liveaction_id)
        claimed = claim(
            session, [item.liveaction_id for item in ids], owner="test", lease_seconds=30
        )
        assert len(claimed) == len(ids)
        # The sweep took the last one away from its runner: its outcome must not be written.
        assert transition(
            session,
            liveaction_id=ids[-1].liveaction_id,
            to=ExecutionStatus.ABANDONED,
            allowed_from=(ExecutionStatus.RUNNING,),
        )
    outcomes = [
        FinalOutcome(ids[0].liveaction_id, ExecutionStatus.SUCCEEDED, {"n": 0, "quote": "'\"é"}),
        FinalOutcome(ids[1].liveaction_id, ExecutionStatus.FAILED, {"n": 1}),
        FinalOutcome(ids[2].liveaction_id, ExecutionStatus.SUCCEEDED, large),
        FinalOutcome(ids[3].liveaction_id, ExecutionStatus.TIMEOUT, None),
        FinalOutcome(ids[4].liveaction_id, ExecutionStatus.SUCCEEDED, {"n": 4}),
    ]
    with unit_of_work(stack.runtime.sessions) as session:
        moved = complete_many(session, outcomes)
    assert sorted(moved) == sorted(item.liveaction_id for item in ids[:4])
    done = [stack.execution(item.execution_id) for item in ids]
    assert [row.status for row in done] == [
        "succeeded",
        "failed",
        "succeeded",
        "timeout",
        "abandoned",
    ]
    assert done[0].result == {"n": 0, "quote": "'\"é"}
    assert done[1].result == {"n": 1}
    assert done[2].result == large
    assert done[2].result_size == len(json.dumps(large))
    assert done[3].result is None
    assert [row.log[-1]["status"] for row in done] == [row.status for row in done]
    assert all(row.end_timestamp is not None for row in done)
    with stack.runtime.sessions() as session:
        leases = session.execute(
            sa.select(LiveActionDB.lease_owner, LiveActionDB.status).where(
                LiveActionDB.id.in_([item.liveaction_id for item in ids[:4]])
            )
        ).all()
        triggers = [
            instance.payload["execution_id"]
            for instance in session.scalars(
                sa.select(TriggerInstanceDB).where(
                    TriggerInstanceDB.trigger == "core.st2.generic.actiontrigger"
                )
            )
        ]
    assert {owner for owner, _ in leases} == {None}
    assert sorted(status for _, status in leases) == sorted(row.status for row in done[:4])
    # One completion trigger per execution that moved here and one for the abandoned one.
    assert sorted(triggers) == sorted(item.execution_id for item in ids)


def api_calls(stack: EngineStack, calls: list[tuple[str, str, Any]]) -> list[httpx.Response]:
    """Requests to the engine's API app on this stack's runtime, in order, with an API key."""
    with unit_of_work(stack.runtime.sessions) as session:
        key = create_api_key(session, user="tester").key

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(stack.runtime, ["api"]))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api", headers={"St2-Api-Key": key}
        ) as client:
            return [await client.request(method, path, json=body) for method, path, body in calls]

    return asyncio.run(send())


@pytest.mark.parametrize("show_secrets", ["false", "true"])
def test_the_created_execution_answered_is_the_one_stored(
    stack: EngineStack, show_secrets: str
) -> None:
    body = {
        "action": "tests.noop",
        "parameters": {"message": 'hé "quoted"', "token": "s3cr3t-t0ken"},
        "context": {"request_id": "r-1"},
        "notify": {"on-complete": {"routes": ["slack"]}},
    }
    [created] = api_calls(stack, [("POST", f"/v1/executions?show_secrets={show_secrets}", body)])
    assert created.status_code == 201, created.text
    document = created.json()
    # No scheduler runs: the execution stays as the POST left it.
    [stored] = api_calls(
        stack, [("GET", f"/v1/executions/{document['id']}?show_secrets={show_secrets}", None)]
    )
    assert stored.status_code == 200, stored.text
    assert document == stored.json()
    assert document["status"] == "requested"
    secret = document["parameters"]["token"]
    assert secret == ("s3cr3t-t0ken" if show_secrets == "true" else "********")
