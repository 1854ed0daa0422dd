"""Packs, actions, rules and CABs as the UI lists them; enabling and disabling a rule.

Lists are read from the engine's tables; a rule is changed through the engine's API, so the
engine's rules engine sees the change as it sees any other. A CAB is enabled or disabled
through its rule (``poundcake_cabs.<name>``); its ``enabled`` is the rule's when the engine
holds it, else its file's.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.public import ActionDB, PackDB, RuleDB, RunnerTypeDB, merge_schemas
from poundcake.exceptions import NotFoundError
from poundcake.remediation.cabs.definition import Cab
from poundcake.remediation.cabs.guard_fields import guards_summary
from poundcake.remediation.cabs.pack import PACK, rule_ref
from poundcake.remediation.engine_api import EngineClient

logger = logging.getLogger(__name__)

# What a rule's API document carries that PUT /rules takes back.
RULE_FIELDS = ("name", "pack", "description", "enabled", "trigger", "criteria", "action", "tags")


def list_packs(session: Session) -> list[dict[str, Any]]:
    """Every registered pack, by ref."""
    return [
        {
            "ref": pack.ref,
            "name": pack.name,
            "description": pack.description,
            "version": pack.version,
        }
        for pack in session.scalars(sa.select(PackDB).order_by(PackDB.ref))
    ]


def list_actions(session: Session, *, pack: str | None) -> list[dict[str, Any]]:
    """The actions of one pack (or all), by ref, with their runner's parameters merged in."""
    query = sa.select(ActionDB).order_by(ActionDB.pack, ActionDB.name)
    if pack:
        query = query.where(ActionDB.pack == pack)
    actions = list(session.scalars(query))
    runner_names = {action.runner_type for action in actions}
    runners = {
        runner.name: runner.runner_parameters or {}
        for runner in session.scalars(
            sa.select(RunnerTypeDB).where(RunnerTypeDB.name.in_(runner_names))
        )
    }
    return [
        {
            "ref": action.ref,
            "pack": action.pack,
            "name": action.name,
            "description": action.description,
            "runner_type": action.runner_type,
            "enabled": action.enabled,
            "parameters": merge_schemas(
                runners.get(action.runner_type, {}), action.parameters or {}
            ),
        }
        for action in actions
    ]


def rule_document(rule: RuleDB | dict[str, Any]) -> dict[str, Any]:
    """A rule as the UI shows it (from the engine's table or its API document)."""
    if isinstance(rule, RuleDB):
        fields: dict[str, Any] = {
            "ref": rule.ref,
            "pack": rule.pack,
            "name": rule.name,
            "description": rule.description,
            "enabled": rule.enabled,
            "trigger": rule.trigger,
            "criteria": rule.criteria or {},
            "action": rule.action or {},
        }
    else:
        trigger = rule.get("trigger") or {}
        fields = {
            "ref": rule.get("ref"),
            "pack": rule.get("pack"),
            "name": rule.get("name"),
            "description": rule.get("description"),
            "enabled": bool(rule.get("enabled")),
            "trigger": trigger.get("type") if isinstance(trigger, dict) else trigger,
            "criteria": rule.get("criteria") or {},
            "action": rule.get("action") or {},
        }
    action = fields["action"]
    fields["action"] = {"ref": action.get("ref"), "parameters": action.get("parameters") or {}}
    fields["cab"] = fields["name"] if fields["pack"] == PACK else None
    return fields


def list_rules(session: Session, *, pack: str | None) -> list[dict[str, Any]]:
    """The rules of one pack (or all), by pack and name."""
    query = sa.select(RuleDB).order_by(RuleDB.pack, RuleDB.name)
    if pack:
        query = query.where(RuleDB.pack == pack)
    return [rule_document(rule) for rule in session.scalars(query)]


def set_rule_enabled(
    engine_api: EngineClient, ref: str, *, enabled: bool, user: str
) -> dict[str, Any]:
    """Enable or disable the rule ``ref`` in the engine; the rule afterwards."""
    found = engine_api.get_rule(ref)
    if found is None:
        raise NotFoundError(f'No rule "{ref}"')
    document = {name: found[name] for name in RULE_FIELDS if name in found}
    document["enabled"] = enabled
    changed = rule_document(engine_api.put_rule(ref, document))
    logger.info("UI user %s %s rule %s", user, "enabled" if enabled else "disabled", ref)
    return changed


def cab_documents(session: Session, cabs: list[Cab]) -> list[dict[str, Any]]:
    """Every CAB file with its rule's ref, its steps, and whether it is enabled."""
    refs = [rule_ref(cab.name) for cab in cabs]
    rules = {
        rule.ref: rule.enabled
        for rule in session.scalars(sa.select(RuleDB).where(RuleDB.ref.in_(refs)))
    }
    return [
        {
            "name": cab.name,
            "description": cab.description,
            "enabled": rules.get(rule_ref(cab.name), cab.enabled),
            "applied": rule_ref(cab.name) in rules,
            "alertname": cab.alert_name_pattern,
            "severities": list(cab.severity_filter),
            "rule_ref": rule_ref(cab.name),
            "guards": cab.guards.document(),
            "guards_summary": guards_summary(cab.guards),
            "steps": [
                {
                    "order": step.order,
                    "name": step.name,
                    "action": step.action,
                    "parameters": step.parameters,
                    "expected_result": step.expected_result,
                }
                for step in cab.steps
            ],
            # Run safety (issue 21).
            "run_safety": cab.run_safety.document(),
        }
        for cab in cabs
    ]
