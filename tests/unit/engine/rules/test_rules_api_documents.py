"""Rule API bodies read into specs, and rules, enforcements and triggers as API documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from poundcake.engine.rules.documents import rule_document, rule_enforcement_document
from poundcake.engine.rules.models import RuleDB, RuleEnforcementDB
from poundcake.engine.rules.service import rule_spec_from_document
from poundcake.engine.triggers.documents import (
    trigger_document,
    trigger_instance_document,
    trigger_type_document,
)
from poundcake.engine.triggers.models import TriggerDB, TriggerInstanceDB, TriggerTypeDB
from poundcake.exceptions import ValidationError

MINIMAL: dict[str, Any] = {
    "name": "echo_alert",
    "trigger": {"type": "core.st2.webhook", "parameters": {"url": "alertmanager"}},
    "action": {"ref": "core.local", "parameters": {"cmd": "echo {{ trigger.body.x }}"}},
}


def test_a_minimal_body_gets_stackstorm_defaults() -> None:
    spec = rule_spec_from_document(MINIMAL, user="alice")
    assert (spec.pack, spec.name, spec.ref) == ("default", "echo_alert", "default.echo_alert")
    assert spec.enabled is False
    assert spec.type == {"ref": "standard", "parameters": {}}
    assert spec.trigger_type == "core.st2.webhook"
    assert spec.trigger_parameters == {"url": "alertmanager"}
    assert spec.action_ref == "core.local"
    assert spec.action_parameters == {"cmd": "echo {{ trigger.body.x }}"}
    assert spec.context == {"user": "alice"}
    assert spec.metadata_file is None


def test_the_document_the_cli_sends_back_is_accepted() -> None:
    sent_back = {
        "id": "5f0c8e1a2b3c4d5e6f708192",
        "uid": "rule:examples:echo_alert",
        "name": "echo_alert",
        "pack": "examples",
        "description": "",
        "enabled": True,
        "trigger": {
            "type": "core.st2.webhook",
            "parameters": {"url": "alertmanager"},
            "ref": "core.0b9c2f4e-0000-4000-8000-000000000000",
        },
        "criteria": {"trigger.body.status": {"type": "equals", "pattern": "firing"}},
        "action": {"ref": "core.local", "parameters": {}},
        "type": {"ref": "backstop", "parameters": {}},
        "context": {"user": "mallory", "source": "cli"},
        "tags": [{"name": "team", "value": "ops"}],
        "metadata_file": "rules/echo_alert.yaml",
    }
    spec = rule_spec_from_document(sent_back, user="alice")
    assert spec.ref == "examples.echo_alert"
    assert spec.enabled is True
    assert spec.type["ref"] == "backstop"
    assert spec.context == {"user": "alice", "source": "cli"}
    assert spec.tags == [{"name": "team", "value": "ops"}]
    assert spec.metadata_file == "rules/echo_alert.yaml"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"name": None}, "name"),
        ({"trigger": None}, "trigger"),
        ({"trigger": {"parameters": {}}}, "trigger.type"),
        ({"action": {"parameters": {}}}, "action.ref"),
        ({"action": {"ref": "core.local", "timeout": 5}}, "action.timeout"),
        ({"type": {"ref": "standard", "priority": 1}}, "type.priority"),
        ({"enabled": "yes"}, "enabled"),
        ({"criteria": ["trigger.body"]}, "criteria"),
    ],
)
def test_malformed_bodies_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=f"^{field}: "):
        rule_spec_from_document({**MINIMAL, **change}, user="alice")


def rule(**values: Any) -> RuleDB:
    defaults: dict[str, Any] = {
        "id": "5f0c8e1a2b3c4d5e6f708192",
        "uid": "rule:examples:echo_alert",
        "ref": "examples.echo_alert",
        "name": "echo_alert",
        "pack": "examples",
        "description": None,
        "enabled": False,
        "trigger": "core.abc",
        "criteria": {},
        "action": {"ref": "core.local", "parameters": {"cmd": "x"}},
        "action_ref": "core.local",
        "type": {"ref": "standard", "parameters": {}},
        "context": {"user": "alice"},
        "tags": [],
        "metadata_file": None,
    }
    return RuleDB(**{**defaults, **values})


def webhook_trigger() -> TriggerDB:
    return TriggerDB(
        id="5f0c8e1a2b3c4d5e6f700000",
        uid="trigger:core:abc:0123",
        ref="core.abc",
        name="abc",
        pack="core",
        type="core.st2.webhook",
        parameters={"url": "alertmanager"},
        description=None,
        ref_count=3,
    )


def test_rule_document_expands_its_trigger() -> None:
    document = rule_document(rule(), webhook_trigger())
    assert document["trigger"] == {
        "type": "core.st2.webhook",
        "parameters": {"url": "alertmanager"},
        "ref": "core.abc",
    }
    assert document["description"] == ""
    assert document["metadata_file"] == ""
    assert set(document) == {
        "id",
        "uid",
        "ref",
        "name",
        "pack",
        "description",
        "enabled",
        "trigger",
        "criteria",
        "action",
        "type",
        "context",
        "tags",
        "metadata_file",
    }


def test_rule_document_keeps_the_ref_of_a_missing_trigger() -> None:
    assert rule_document(rule(), None)["trigger"] == {"ref": "core.abc", "parameters": {}}


def test_trigger_document_keeps_ref_count_in_the_database() -> None:
    document = trigger_document(webhook_trigger())
    assert document == {
        "id": "5f0c8e1a2b3c4d5e6f700000",
        "uid": "trigger:core:abc:0123",
        "ref": "core.abc",
        "name": "abc",
        "pack": "core",
        "type": "core.st2.webhook",
        "parameters": {"url": "alertmanager"},
    }


def test_trigger_type_and_instance_documents() -> None:
    trigger_type = TriggerTypeDB(
        id="5f0c8e1a2b3c4d5e6f700001",
        uid="trigger_type:core:st2.webhook",
        ref="core.st2.webhook",
        name="st2.webhook",
        pack="core",
        description="d",
        payload_schema=None,
        parameters_schema={"type": "object"},
        tags=None,
        metadata_file=None,
    )
    assert trigger_type_document(trigger_type)["payload_schema"] == {}
    assert trigger_type_document(trigger_type)["parameters_schema"] == {"type": "object"}
    instance = TriggerInstanceDB(
        id="5f0c8e1a2b3c4d5e6f700002",
        trigger="core.abc",
        payload={"body": {}},
        occurrence_time=datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
        status="pending",
    )
    assert trigger_instance_document(instance) == {
        "id": "5f0c8e1a2b3c4d5e6f700002",
        "trigger": "core.abc",
        "payload": {"body": {}},
        "occurrence_time": "2026-01-02T03:04:05.006000Z",
        "status": "pending",
    }


def test_enforcement_document_leaves_out_what_did_not_happen() -> None:
    enforcement = RuleEnforcementDB(
        id="5f0c8e1a2b3c4d5e6f700003",
        trigger_instance_id="5f0c8e1a2b3c4d5e6f700002",
        execution_id=None,
        rule={"ref": "examples.echo_alert", "id": "5f0c8e1a2b3c4d5e6f708192", "uid": "u"},
        rule_ref="examples.echo_alert",
        enforced_at=datetime(2026, 1, 2, tzinfo=UTC),
        status="failed",
        failure_reason="Action core.nope not found",
    )
    document = rule_enforcement_document(enforcement)
    assert "execution_id" not in document
    assert document["failure_reason"] == "Action core.nope not found"
    assert document["enforced_at"] == "2026-01-02T00:00:00.000000Z"
    assert document["rule"]["ref"] == "examples.echo_alert"
