"""Pause, resume and pending executions in the database: the races the CLI tests cannot time.

The service functions run against a real MariaDB; runners are stood in for by claiming and
recording outcomes the way the action runner does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.session import unit_of_work
from poundcake.engine.executions.models import ExecutionDB, LiveActionDB
from poundcake.engine.executions.pausing import record_paused, request_pause, request_resume
from poundcake.engine.executions.service import (
    RequestedExecution,
    cancel_execution,
    claim,
    request_execution,
    schedule,
)
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.inquiries.service import INQUIRY_TRIGGER, await_response, respond
from poundcake.engine.scheduler.service import unclaimed
from poundcake.engine.triggers.models import TriggerInstanceDB
from tests import factories
from tests.integration.support.engine_stack import EngineStack, engine_stack

S = ExecutionStatus
ASKED = {"schema": {"type": "object"}, "roles": [], "users": [], "route": "ops", "ttl": 60}


@pytest.fixture
def stack(tmp_path: Path, scratch_database: str) -> Iterator[EngineStack]:
    with engine_stack(tmp_path, scratch_database) as running:
        with unit_of_work(running.runtime.sessions) as session:
            for runner in ("action-chain", "inquirer", "noop"):
                factories.runner_type(session, runner)
            factories.pack(session, "tests")
            factories.action(session, "tests.chain", "action-chain", entry_point="chain.yaml")
            factories.action(session, "tests.ask", "inquirer")
        yield running


def started(
    session: Session,
    action_ref: str,
    *,
    owner: str = "runner-a",
    parent: RequestedExecution | None = None,
    context: dict[str, Any] | None = None,
) -> RequestedExecution:
    """An execution claimed by runner ``owner`` (running), as a child of ``parent``."""
    child_context = dict(context or {})
    if parent is not None:
        child_context["parent"] = {"execution_id": parent.execution_id, "user": "tester"}
    requested = request_execution(
        session,
        action_ref=action_ref,
        user="tester",
        context=child_context,
        parent=parent.execution_id if parent else None,
    )
    assert schedule(session, requested.liveaction_id)
    assert claim(session, [requested.liveaction_id], owner=owner, lease_seconds=60)
    return requested


def row(session: Session, requested: RequestedExecution) -> tuple[ExecutionDB, LiveActionDB]:
    execution = session.get(ExecutionDB, requested.execution_id, populate_existing=True)
    liveaction = session.get(LiveActionDB, requested.liveaction_id, populate_existing=True)
    assert execution is not None and liveaction is not None
    return execution, liveaction


def test_a_resume_before_the_chain_stopped_is_handed_over_when_it_stops(
    stack: EngineStack,
) -> None:
    with unit_of_work(stack.runtime.sessions) as session:
        chain = started(session, "tests.chain")
        execution, _ = row(session, chain)
        assert [e.id for e in request_pause(session, execution, user="ann")] == [execution.id]
        resumed = request_resume(session, execution, user="bob")
        assert resumed is not None and resumed.execution_id == chain.execution_id
        # Its runner still runs it: no other runner may claim it.
        assert claim(session, [chain.liveaction_id], owner="runner-b", lease_seconds=60) == []
        tasks = {"tasks": [{"name": "one", "state": "succeeded"}], "published": {}}
        now = record_paused(
            session, liveaction_id=chain.liveaction_id, result=tasks, context={"vars": {"a": 1}}
        )
        assert now == S.RESUMING
        execution, liveaction = row(session, chain)
        assert execution.status == "resuming" and liveaction.lease_owner is None
        assert execution.result == tasks
        assert execution.context["vars"] == {"a": 1}
        assert execution.context["paused_by"] == "ann"
        assert execution.context["resumed_by"] == "bob"
        assert claim(session, [chain.liveaction_id], owner="runner-b", lease_seconds=60) == [
            chain.liveaction_id
        ]
        assert [entry["status"] for entry in row(session, chain)[0].log][-3:] == [
            "pausing",
            "resuming",
            "running",
        ]


def test_a_resumed_workflow_nobody_took_is_found_by_the_sweep(stack: EngineStack) -> None:
    with unit_of_work(stack.runtime.sessions) as session:
        chain = started(session, "tests.chain")
        execution, _ = row(session, chain)
        request_pause(session, execution, user="ann")
        record_paused(session, liveaction_id=chain.liveaction_id, result={"tasks": []})
        assert request_resume(session, execution, user="ann") is not None
    with stack.runtime.sessions() as session:
        found = unclaimed(session, older_than=0, limit=10)
        assert [(item.liveaction_id, item.workflow) for item in found] == [
            (chain.liveaction_id, True)
        ]
        assert unclaimed(session, older_than=60, limit=10) == []


def test_a_pending_task_pauses_every_chain_above_it(stack: EngineStack) -> None:
    with unit_of_work(stack.runtime.sessions) as session:
        root = started(session, "tests.chain")
        sub = started(session, "tests.chain", parent=root)
        ask = started(session, "tests.ask", parent=sub)
        waiting = await_response(session, liveaction_id=ask.liveaction_id, result=ASKED)
        assert {e.id for e in waiting.paused} == {root.execution_id, sub.execution_id}
        assert row(session, ask)[0].status == "pending"
        assert row(session, ask)[1].lease_owner is None
        assert row(session, root)[0].status == "pausing"
        assert row(session, sub)[0].status == "pausing"
        payloads = session.scalars(
            sa.select(TriggerInstanceDB.payload).where(TriggerInstanceDB.trigger == INQUIRY_TRIGGER)
        ).all()
        assert payloads == [{"id": ask.execution_id, "route": "ops"}]


def test_under_orquesta_a_pending_task_pauses_nothing(stack: EngineStack) -> None:
    with unit_of_work(stack.runtime.sessions) as session:
        workflow = started(session, "tests.chain")
        ask = started(
            session, "tests.ask", parent=workflow, context={"orquesta": {"task_name": "approve"}}
        )
        waiting = await_response(session, liveaction_id=ask.liveaction_id, result=ASKED)
        assert waiting.paused == []
        assert row(session, workflow)[0].status == "running"


def test_a_response_while_the_chain_is_still_pausing_resumes_it(stack: EngineStack) -> None:
    with unit_of_work(stack.runtime.sessions) as session:
        chain = started(session, "tests.chain")
        ask = started(session, "tests.ask", parent=chain)
        await_response(session, liveaction_id=ask.liveaction_id, result=ASKED)
        answered = respond(session, ask.execution_id, {}, user="tester")
        assert answered.resumed is not None
        assert answered.resumed.execution_id == chain.execution_id
        assert answered.execution.status == "succeeded"
        assert answered.execution.result == {**ASKED, "response": {}}
        assert row(session, chain)[0].status == "resuming"
        record_paused(session, liveaction_id=chain.liveaction_id, result={"tasks": []})
        execution, liveaction = row(session, chain)
        assert execution.status == "resuming" and liveaction.lease_owner is None


def test_a_paused_chain_and_its_pending_inquiry_are_canceled_at_once(
    stack: EngineStack,
) -> None:
    with unit_of_work(stack.runtime.sessions) as session:
        chain = started(session, "tests.chain")
        ask = started(session, "tests.ask", parent=chain)
        await_response(session, liveaction_id=ask.liveaction_id, result=ASKED)
        tasks = {"tasks": [{"name": "ask", "state": "pending"}], "published": {}}
        assert record_paused(session, liveaction_id=chain.liveaction_id, result=tasks) == S.PAUSED
        outcome = cancel_execution(session, chain.execution_id, user="ann")
        assert outcome.refused is None
        execution, _ = row(session, chain)
        assert execution.status == "canceled"
        assert execution.result == {**tasks, "message": "Action canceled by user.", "user": "ann"}
        assert row(session, ask)[0].status == "canceled"
