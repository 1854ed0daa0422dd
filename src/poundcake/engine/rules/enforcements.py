"""Rule enforcements as the API reads them: one by id, and filtered lists, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.rules.models import RuleEnforcementDB
from poundcake.exceptions import NotFoundError


@dataclass(frozen=True)
class EnforcementFilters:
    """What ``GET /v1/ruleenforcements`` may filter on."""

    rule_ref: str | None = None
    rule_id: str | None = None
    execution: str | None = None
    trigger_instance: str | None = None
    enforced_after: datetime | None = None
    enforced_before: datetime | None = None


def get_rule_enforcement(*, session: Session, enforcement_id: str) -> RuleEnforcementDB:
    """Return the enforcement with ``enforcement_id``; NotFoundError otherwise."""
    enforcement = session.get(RuleEnforcementDB, enforcement_id)
    if enforcement is None:
        raise NotFoundError(f'RuleEnforcement with id "{enforcement_id}" not found')
    return enforcement


def _conditions(filters: EnforcementFilters) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.rule_ref:
        conditions.append(RuleEnforcementDB.rule_ref == filters.rule_ref)
    if filters.rule_id:
        conditions.append(RuleEnforcementDB.rule["id"].as_string() == filters.rule_id)
    if filters.execution:
        conditions.append(RuleEnforcementDB.execution_id == filters.execution)
    if filters.trigger_instance:
        conditions.append(RuleEnforcementDB.trigger_instance_id == filters.trigger_instance)
    if filters.enforced_after is not None:
        conditions.append(RuleEnforcementDB.enforced_at > filters.enforced_after)
    if filters.enforced_before is not None:
        conditions.append(RuleEnforcementDB.enforced_at < filters.enforced_before)
    return conditions


def list_rule_enforcements(
    *, session: Session, filters: EnforcementFilters, offset: int, limit: int | None
) -> tuple[int, list[RuleEnforcementDB]]:
    """Return how many enforcements match and one page of them, newest first."""
    conditions = _conditions(filters)
    total = session.scalar(
        sa.select(sa.func.count()).select_from(RuleEnforcementDB).where(*conditions)
    )
    query = (
        sa.select(RuleEnforcementDB)
        .where(*conditions)
        .order_by(RuleEnforcementDB.enforced_at.desc(), RuleEnforcementDB.rule_ref)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return total or 0, list(session.scalars(query))
