"""Rules and rule enforcements as StackStorm API documents."""

from __future__ import annotations

from typing import Any

from poundcake.engine.documents import isoformat
from poundcake.engine.rules.models import RuleDB, RuleEnforcementDB
from poundcake.engine.triggers.models import TriggerDB


def rule_document(rule: RuleDB, trigger: TriggerDB | None) -> dict[str, Any]:
    """The Rule API document; ``trigger`` expands the stored trigger ref to type and parameters."""
    expanded: dict[str, Any] = {"ref": rule.trigger, "parameters": {}}
    if trigger is not None:
        expanded = {
            "type": trigger.type,
            "parameters": trigger.parameters or {},
            "ref": rule.trigger,
        }
    return {
        "id": rule.id,
        "uid": rule.uid,
        "ref": rule.ref,
        "name": rule.name,
        "pack": rule.pack,
        "description": rule.description or "",
        "enabled": rule.enabled,
        "trigger": expanded,
        "criteria": rule.criteria or {},
        "action": rule.action or {"ref": rule.action_ref, "parameters": {}},
        "type": rule.type or {"ref": "standard", "parameters": {}},
        "context": rule.context or {},
        "tags": rule.tags or [],
        "metadata_file": rule.metadata_file or "",
    }


def rule_enforcement_document(enforcement: RuleEnforcementDB) -> dict[str, Any]:
    """The RuleEnforcement API document; absent execution and failure are left out."""
    document: dict[str, Any] = {
        "id": enforcement.id,
        "trigger_instance_id": enforcement.trigger_instance_id,
        "rule": enforcement.rule or {"ref": enforcement.rule_ref},
        "enforced_at": isoformat(enforcement.enforced_at),
        "status": enforcement.status,
    }
    if enforcement.execution_id:
        document["execution_id"] = enforcement.execution_id
    if enforcement.failure_reason:
        document["failure_reason"] = enforcement.failure_reason
    return document
