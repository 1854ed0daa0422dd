"""The rules engine on real MariaDB and RabbitMQ: trigger instances -> rules -> executions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from poundcake.db.session import unit_of_work
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.sealed import open_parameters
from poundcake.engine.keyvalue.service import set_value
from poundcake.engine.packs.locations import content_locations
from poundcake.engine.packs.registration import register_packs
from poundcake.engine.rules.models import RuleEnforcementDB
from poundcake.engine.rules.process import RulesEngine, RulesEngineSettings
from poundcake.engine.rules.service import create_rule, find_rule
from poundcake.engine.triggers.instances import announce_trigger_instances
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.engine.webhooks.service import dispatch_webhook
from tests import factories
from tests.integration.support.engine_stack import EngineStack, engine_stack
from tests.integration.support.shell_engine import statuses

USER = "tester"


@contextmanager
def registered_stack(
    tmp_path: Path, database: str, *, scheduler: bool = True
) -> Iterator[EngineStack]:
    """The engine with every pack registered, a runner and (unless told not to) a scheduler."""
    extra = f"\n[system]\ndata_dir = {tmp_path / 'data'}\n"
    with engine_stack(tmp_path, database, extra) as running:
        with unit_of_work(running.runtime.sessions) as session:
            register_packs(
                session=session,
                locations=content_locations(running.config),
                packs=None,
                types=None,
                system_user="stanley",
            )
        if scheduler:
            running.start_scheduler()
        running.start_runner()
        yield running


@pytest.fixture
def stack(tmp_path: Path, scratch_database: str) -> Iterator[EngineStack]:
    with registered_stack(tmp_path, scratch_database) as running:
        yield running


def start_rules_engine(stack: EngineStack, batch_size: int = 100) -> RulesEngine:
    engine = RulesEngine(
        stack.runtime, RulesEngineSettings(batch_size=batch_size, poll_interval=0.2)
    )
    thread = threading.Thread(target=engine.run, args=(stack.stop,), daemon=True)
    thread.start()
    stack.threads.append(thread)
    return engine


def webhook_rule(name: str, url: str, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": name,
        "pack": "tests",
        "enabled": True,
        "trigger": {"type": "core.st2.webhook", "parameters": {"url": url}},
        "criteria": {"trigger.body.status": {"type": "equals", "pattern": "firing"}},
        "action": {"ref": "core.local", "parameters": {"cmd": "printf %s {{ trigger.body.x }}"}},
    }
    document.update(changes)
    return document


def add_rule(stack: EngineStack, document: dict[str, Any]) -> str:
    with unit_of_work(stack.runtime.sessions) as session:
        return create_rule(session=session, document=document, user=USER).ref


def post(stack: EngineStack, url: str, body: Any) -> list[str]:
    with unit_of_work(stack.runtime.sessions) as session:
        instances = dispatch_webhook(session=session, url=url, headers=[], body=body)
    announce_trigger_instances(stack.runtime.publisher, instances)
    return [instance.id for instance in instances]


def wait_processed(stack: EngineStack, instance_id: str, timeout: float = 30) -> TriggerInstanceDB:
    deadline = time.monotonic() + timeout
    while True:
        with stack.runtime.sessions() as session:
            instance = session.get(TriggerInstanceDB, instance_id)
            assert instance is not None
            if instance.status not in ("pending", "processing"):
                return instance
        assert time.monotonic() < deadline, f"instance {instance_id} still {instance.status}"
        time.sleep(0.05)


def enforcements(stack: EngineStack, instance_id: str) -> list[RuleEnforcementDB]:
    with stack.runtime.sessions() as session:
        return list(
            session.scalars(
                sa.select(RuleEnforcementDB).where(
                    RuleEnforcementDB.trigger_instance_id == instance_id
                )
            )
        )


def test_a_matching_instance_runs_the_action_with_the_rendered_parameter(
    stack: EngineStack,
) -> None:
    rule_ref = add_rule(stack, webhook_rule("echo", "hooks/echo"))
    start_rules_engine(stack)
    [instance_id] = post(stack, "hooks/echo", {"status": "firing", "x": "hello world"})
    assert wait_processed(stack, instance_id).status == "processed"
    [enforcement] = enforcements(stack, instance_id)
    assert enforcement.status == "succeeded"
    assert enforcement.rule_ref == rule_ref
    assert enforcement.execution_id
    execution = stack.wait(enforcement.execution_id)
    assert execution.status == "succeeded", execution.result
    assert execution.parameters == {"cmd": "printf %s 'hello world'"}
    assert execution.result["stdout"] == "hello world"
    assert execution.context["rule"]["ref"] == rule_ref
    assert execution.context["trigger_instance"]["id"] == instance_id
    assert execution.context["user"] == "stanley"
    assert execution.rule_ref == rule_ref
    assert execution.trigger_instance_id == instance_id
    assert execution.trigger["parameters"] == {"url": "hooks/echo"}
    assert execution.trigger_type["ref"] == "core.st2.webhook"


def test_a_non_matching_instance_is_processed_without_an_execution(stack: EngineStack) -> None:
    add_rule(stack, webhook_rule("quiet", "hooks/quiet"))
    start_rules_engine(stack)
    [instance_id] = post(stack, "hooks/quiet", {"status": "resolved", "x": "no"})
    assert wait_processed(stack, instance_id).status == "processed"
    assert enforcements(stack, instance_id) == []


def test_a_disabled_rule_runs_nothing(stack: EngineStack) -> None:
    add_rule(stack, webhook_rule("off", "hooks/off", enabled=False))
    start_rules_engine(stack)
    [instance_id] = post(stack, "hooks/off", {"status": "firing", "x": "no"})
    assert wait_processed(stack, instance_id).status == "processed"
    assert enforcements(stack, instance_id) == []


def test_a_backstop_rule_runs_only_when_no_standard_rule_matched(stack: EngineStack) -> None:
    add_rule(stack, webhook_rule("main", "hooks/bs"))
    backstop = add_rule(
        stack,
        webhook_rule("fallback", "hooks/bs", criteria={}, type={"ref": "backstop"}),
    )
    start_rules_engine(stack)
    [firing] = post(stack, "hooks/bs", {"status": "firing", "x": "a"})
    [other] = post(stack, "hooks/bs", {"status": "other", "x": "b"})
    wait_processed(stack, firing)
    wait_processed(stack, other)
    assert [e.rule_ref for e in enforcements(stack, firing)] == ["tests.main"]
    assert [e.rule_ref for e in enforcements(stack, other)] == [backstop]


@pytest.mark.parametrize(
    "value",
    [
        "; touch {marker}",
        "$(touch {marker})",
        "`touch {marker}`",
        "x && touch {marker}",
        "x' ; touch {marker} ; '",
        '" ; touch {marker} ; "',
        "{{{{ st2kv.system.secret }}}}",
    ],
)
def test_hostile_payload_values_are_data(stack: EngineStack, tmp_path: Path, value: str) -> None:
    marker = tmp_path / "pwned"
    with unit_of_work(stack.runtime.sessions) as session:
        set_value(session, name="secret", value="TOPSECRET")
    add_rule(stack, webhook_rule("hostile", "hooks/hostile"))
    start_rules_engine(stack)
    hostile = value.format(marker=marker)
    [instance_id] = post(stack, "hooks/hostile", {"status": "firing", "x": hostile})
    wait_processed(stack, instance_id)
    [enforcement] = enforcements(stack, instance_id)
    assert enforcement.execution_id, enforcement.failure_reason
    execution = stack.wait(enforcement.execution_id)
    assert execution.status == "succeeded", execution.result
    assert execution.result["stdout"] == hostile
    assert "TOPSECRET" not in str(execution.result)
    assert not marker.exists()


def test_a_failed_request_leaves_a_failed_enforcement(stack: EngineStack) -> None:
    add_rule(
        stack,
        webhook_rule(
            "broken",
            "hooks/broken",
            action={"ref": "core.local", "parameters": {"cmd": "echo {{ trigger.body.nope }}"}},
        ),
    )
    add_rule(
        stack,
        webhook_rule("missing", "hooks/broken", action={"ref": "core.local", "parameters": {}}),
    )
    start_rules_engine(stack)
    [instance_id] = post(stack, "hooks/broken", {"status": "firing"})
    assert wait_processed(stack, instance_id).status == "processed"
    found = {e.rule_ref: e for e in enforcements(stack, instance_id)}
    assert set(found) == {"tests.broken", "tests.missing"}
    for enforcement in found.values():
        assert enforcement.status == "failed"
        assert enforcement.execution_id is None
    assert 'Failed to render parameter "cmd"' in (found["tests.broken"].failure_reason or "")
    assert "'cmd' is a required property" in (found["tests.missing"].failure_reason or "")


def test_criteria_patterns_read_the_datastore(stack: EngineStack) -> None:
    with unit_of_work(stack.runtime.sessions) as session:
        set_value(session, name="wanted", value="db01")
    add_rule(
        stack,
        webhook_rule(
            "kv",
            "hooks/kv",
            criteria={"trigger.body.host": {"type": "eq", "pattern": "{{ st2kv.system.wanted }}"}},
        ),
    )
    start_rules_engine(stack)
    [hit] = post(stack, "hooks/kv", {"host": "db01", "x": "1"})
    [miss] = post(stack, "hooks/kv", {"host": "db02", "x": "2"})
    wait_processed(stack, hit)
    wait_processed(stack, miss)
    assert len(enforcements(stack, hit)) == 1
    assert enforcements(stack, miss) == []


def test_a_finished_execution_fires_the_action_trigger_and_rules_chain(
    stack: EngineStack,
) -> None:
    add_rule(stack, webhook_rule("first", "hooks/chain"))
    chained = add_rule(
        stack,
        {
            "name": "then",
            "pack": "tests",
            "enabled": True,
            "trigger": {"type": "core.st2.generic.actiontrigger"},
            "criteria": {
                "trigger.action_ref": {"type": "equals", "pattern": "core.local"},
                "trigger.result.stdout": {"type": "equals", "pattern": "chain-me"},
            },
            "action": {
                "ref": "core.echo",
                "parameters": {"message": "after {{ trigger.execution_id }} {{ trigger.status }}"},
            },
        },
    )
    start_rules_engine(stack)
    [instance_id] = post(stack, "hooks/chain", {"status": "firing", "x": "chain-me"})
    wait_processed(stack, instance_id)
    [first] = enforcements(stack, instance_id)
    assert first.execution_id
    stack.wait(first.execution_id)
    deadline = time.monotonic() + 30
    while True:
        with stack.runtime.sessions() as session:
            followed = session.scalars(
                sa.select(ExecutionDB).where(ExecutionDB.rule_ref == chained)
            ).all()
        if followed:
            break
        assert time.monotonic() < deadline, "the actiontrigger rule never ran"
        time.sleep(0.1)
    [then] = followed
    assert then.parameters == {"message": f"after {first.execution_id} succeeded"}
    assert then.trigger_instance["payload"]["execution_id"] == first.execution_id
    assert then.trigger_instance["payload"]["action_ref"] == "core.local"


def test_two_rules_engines_enforce_each_instance_once(stack: EngineStack) -> None:
    add_rule(stack, webhook_rule("once", "hooks/once", action={"ref": "core.noop"}))
    add_rule(stack, webhook_rule("twice", "hooks/once", action={"ref": "core.noop"}))
    instance_ids = [
        instance_id
        for n in range(150)
        for instance_id in post(stack, "hooks/once", {"status": "firing", "n": n})
    ]
    start_rules_engine(stack, batch_size=7)
    start_rules_engine(stack, batch_size=11)
    for instance_id in instance_ids:
        wait_processed(stack, instance_id, timeout=120)
    with stack.runtime.sessions() as session:
        rows = session.execute(
            sa.select(RuleEnforcementDB.trigger_instance_id, RuleEnforcementDB.rule_ref).where(
                RuleEnforcementDB.trigger_instance_id.in_(instance_ids)
            )
        ).all()
        executions = session.scalar(
            sa.select(sa.func.count())
            .select_from(ExecutionDB)
            .where(ExecutionDB.trigger_instance_id.in_(instance_ids))
        )
    assert len(rows) == len(set(rows)) == 2 * len(instance_ids)
    assert executions == 2 * len(instance_ids)


def test_instances_stored_while_no_rules_engine_ran_are_processed_later(
    stack: EngineStack,
) -> None:
    add_rule(stack, webhook_rule("late", "hooks/late"))
    [instance_id] = post(stack, "hooks/late", {"status": "firing", "x": "late"})
    with stack.runtime.sessions() as session:
        assert session.get(TriggerInstanceDB, instance_id).status == "pending"  # type: ignore[union-attr]
    with unit_of_work(stack.runtime.sessions) as session:
        rule = find_rule(session=session, ref_or_id="tests.late")
        assert rule.enabled
    start_rules_engine(stack)
    assert wait_processed(stack, instance_id).status == "processed"
    assert len(enforcements(stack, instance_id)) == 1


def test_a_rule_secret_parameter_is_stored_sealed(stack: EngineStack) -> None:
    action = {
        "ref": "core.local",
        "parameters": {"cmd": "printf ran", "sudo_password": "{{ trigger.body.x }}"},
    }
    add_rule(stack, webhook_rule("sealed", "hooks/sealed", action=action))
    start_rules_engine(stack)
    [instance_id] = post(stack, "hooks/sealed", {"status": "firing", "x": "rule-pw-1234"})
    wait_processed(stack, instance_id)
    [enforcement] = enforcements(stack, instance_id)
    assert enforcement.execution_id, enforcement.failure_reason
    execution = stack.wait(enforcement.execution_id)
    assert execution.status == "succeeded", execution.result
    assert "rule-pw-1234" not in json.dumps([execution.parameters, execution.liveaction])
    assert set(execution.parameters["sudo_password"]) == {"__secret__"}
    opened = open_parameters(execution.parameters, {"sudo_password"}, stack.cipher())
    assert opened["sudo_password"] == "rule-pw-1234"


@pytest.fixture
def stack_without_scheduler(tmp_path: Path, scratch_database: str) -> Iterator[EngineStack]:
    with registered_stack(tmp_path, scratch_database, scheduler=False) as running:
        yield running


def test_an_execution_no_policy_holds_back_goes_straight_to_the_runners(
    stack_without_scheduler: EngineStack,
) -> None:
    stack = stack_without_scheduler
    add_rule(stack, webhook_rule("direct", "hooks/direct"))
    start_rules_engine(stack)
    [instance_id] = post(stack, "hooks/direct", {"status": "firing", "x": "straight"})
    [enforcement] = enforcements(stack, wait_processed(stack, instance_id).id)
    assert enforcement.execution_id
    execution = stack.wait(enforcement.execution_id)
    assert execution.status == "succeeded", execution.result
    assert statuses(execution) == ["requested", "scheduled", "running", "succeeded"]


def test_an_execution_a_concurrency_policy_may_hold_back_goes_to_the_scheduler(
    stack_without_scheduler: EngineStack,
) -> None:
    stack = stack_without_scheduler
    with unit_of_work(stack.runtime.sessions) as session:
        factories.concurrency_policy(session, "core.local", 1)
    add_rule(stack, webhook_rule("guarded", "hooks/guarded"))
    start_rules_engine(stack)
    [instance_id] = post(stack, "hooks/guarded", {"status": "firing", "x": "held"})
    [enforcement] = enforcements(stack, wait_processed(stack, instance_id).id)
    assert enforcement.execution_id
    assert stack.execution(enforcement.execution_id).status == "requested"
    stack.start_scheduler()
    execution = stack.wait(enforcement.execution_id)
    assert execution.status == "succeeded", execution.result
    assert statuses(execution)[:2] == ["requested", "scheduled"]


def action_triggers(stack: EngineStack, execution_id: str) -> list[TriggerInstanceDB]:
    with stack.runtime.sessions() as session:
        return [
            instance
            for instance in session.scalars(
                sa.select(TriggerInstanceDB).where(
                    TriggerInstanceDB.trigger == "core.st2.generic.actiontrigger"
                )
            )
            if (instance.payload or {}).get("execution_id") == execution_id
        ]


def test_an_action_trigger_no_rule_listens_to_is_stored_processed(stack: EngineStack) -> None:
    add_rule(
        stack,
        {
            "name": "off",
            "pack": "tests",
            "enabled": False,
            "trigger": {"type": "core.st2.generic.actiontrigger"},
            "action": {"ref": "core.noop"},
        },
    )
    execution = stack.wait(stack.request("core.noop").execution_id)
    assert execution.status == "succeeded"
    # No rules engine runs: the instance was written processed with the execution's end.
    [instance] = action_triggers(stack, execution.id)
    assert instance.status == "processed"
    assert instance.payload["status"] == "succeeded"


def test_an_action_trigger_an_enabled_rule_listens_to_waits_for_the_rules_engine(
    stack: EngineStack,
) -> None:
    chained = add_rule(
        stack,
        {
            "name": "on",
            "pack": "tests",
            "enabled": True,
            "trigger": {"type": "core.st2.generic.actiontrigger"},
            "criteria": {"trigger.action_ref": {"type": "equals", "pattern": "core.local"}},
            "action": {"ref": "core.noop"},
        },
    )
    execution = stack.wait(stack.request("core.local", {"cmd": "true"}).execution_id)
    [instance] = action_triggers(stack, execution.id)
    assert instance.status == "pending"
    start_rules_engine(stack)
    assert wait_processed(stack, instance.id).status == "processed"
    [enforcement] = enforcements(stack, instance.id)
    assert enforcement.rule_ref == chained
