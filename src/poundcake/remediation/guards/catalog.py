"""The CABs the guard step decides for: each applied CAB with its rule's match and guard fields.

The match is the CAB's rule as the engine holds it, checked by the engine's own criteria matcher
(``poundcake.engine.public``), without the criterion on ``trigger.admitted_cabs`` that the guard
step itself satisfies: the guard step asks "would this CAB's rule take the alert", then admits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
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


def _cab(extension: dict[str, Any], guards: CabGuards) -> Cab:
    steps = tuple(
        CabStep(
            order=int(step.get("step_order") or index + 1),
            name=str(step["name"]),
            action=str(step["action"]),
            parameters=dict(step.get("parameters") or {}),
            expected_result=step.get("expected_result"),
            timeout_seconds=step.get("timeout_seconds"),
        )
        for index, step in enumerate(extension["steps"] or [])
    )
    return Cab(
        name=extension["cab_name"],
        alert_name_pattern=extension["alert_name_pattern"],
        steps=steps,
        severity_filter=tuple(extension["severity_filter"] or ()),
        stop_on_first_failure=extension["stop_on_first_failure"],
        guards=guards,
    )


@lru_cache(maxsize=1024)
def _compiled(criteria: str) -> tuple[CompiledCriteria | None, str | None]:
    """A rule's criteria compiled once per process (keyed by their JSON: a change recompiles)."""
    try:
        return compile_criteria(without_admission(json.loads(criteria))), None
    except CriteriaError as failure:
        return None, str(failure)


@lru_cache(maxsize=1024)
def _guarded_cab(extension: str) -> tuple[CabGuards, Cab]:
    """A CAB's guard fields and steps read once per process (keyed by the stored JSON)."""
    document = json.loads(extension)
    guards = guards_from_document(document["guards"])
    return guards, _cab(document, guards)


_EXTENSION_COLUMNS = (
    RuleExtension.cab_name,
    RuleExtension.alert_name_pattern,
    RuleExtension.severity_filter,
    RuleExtension.stop_on_first_failure,
    RuleExtension.steps,
    RuleExtension.guards,
)


def _guarded(row: sa.Row[Any]) -> GuardedCab:
    stored = row._asdict()
    criteria = stored.pop("criteria")
    compiled, error = _compiled(json.dumps(criteria or {}, sort_keys=True))
    guards, cab = _guarded_cab(json.dumps(stored, sort_keys=True, default=str))
    return GuardedCab(stored["cab_name"], compiled, error, guards, cab)


def active_cabs(session: Session) -> list[GuardedCab]:
    """Every applied CAB whose rule is enabled, by name (the order decisions are made in)."""
    rows = session.execute(
        sa.select(*_EXTENSION_COLUMNS, RuleDB.criteria)
        .join(RuleDB, RuleDB.id == RuleExtension.st2_rule_id)
        .where(RuleExtension.is_active.is_(True), RuleDB.enabled.is_(True))
        .order_by(RuleExtension.cab_name)
    )
    return [_guarded(row) for row in rows]
