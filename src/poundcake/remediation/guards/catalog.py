"""The CABs the guard step decides for: each applied CAB with its rule's match and guard fields.

The match is the CAB's rule as the engine holds it, checked by the engine's own criteria matcher
(``poundcake.engine.public``), without the criterion on ``trigger.admitted_cabs`` that the guard
step itself satisfies: the guard step asks "would this CAB's rule take the alert", then admits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.public import CompiledCriteria, CriteriaError, RuleDB, compile_criteria
from poundcake.remediation.cabs.definition import Cab, CabStep
from poundcake.remediation.cabs.guard_fields import CabGuards, guards_from_document
from poundcake.remediation.cabs.models import RuleExtension
from poundcake.remediation.cabs.pack import without_admission


@dataclass(frozen=True)
class GuardedCab:
    """An applied, enabled CAB: its rule's match, its guard fields and its steps."""

    name: str
    criteria: CompiledCriteria | None
    criteria_error: str | None
    guards: CabGuards
    cab: Cab

    def explain(self, payload: dict[str, Any]) -> str | None:
        """Why the CAB's rule does not take ``payload`` (None when it does)."""
        if self.criteria is None:
            return f"the rule's criteria do not compile: {self.criteria_error}"
        return self.criteria.explain(payload)


def _cab(extension: RuleExtension, guards: CabGuards) -> Cab:
    steps = tuple(
        CabStep(
            order=int(step.get("step_order") or index + 1),
            name=str(step["name"]),
            action=str(step["action"]),
            parameters=dict(step.get("parameters") or {}),
            expected_result=step.get("expected_result"),
            timeout_seconds=step.get("timeout_seconds"),
        )
        for index, step in enumerate(extension.steps or [])
    )
    return Cab(
        name=extension.cab_name,
        alert_name_pattern=extension.alert_name_pattern,
        steps=steps,
        severity_filter=tuple(extension.severity_filter or ()),
        stop_on_first_failure=extension.stop_on_first_failure,
        guards=guards,
    )


def _guarded(extension: RuleExtension, rule: RuleDB) -> GuardedCab:
    guards = guards_from_document(extension.guards)
    try:
        compiled: CompiledCriteria | None = compile_criteria(without_admission(rule.criteria))
        error = None
    except CriteriaError as failure:
        compiled, error = None, str(failure)
    return GuardedCab(extension.cab_name, compiled, error, guards, _cab(extension, guards))


def active_cabs(session: Session) -> list[GuardedCab]:
    """Every applied CAB whose rule is enabled, by name (the order decisions are made in)."""
    rows = session.execute(
        sa.select(RuleExtension, RuleDB)
        .join(RuleDB, RuleDB.id == RuleExtension.st2_rule_id)
        .where(RuleExtension.is_active.is_(True), RuleDB.enabled.is_(True))
        .order_by(RuleExtension.cab_name)
    )
    return [_guarded(extension, rule) for extension, rule in rows]
