"""Rules in the database: registering a rule resolves its trigger and keeps ``ref_count`` right."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.packs.errors import FieldError
from poundcake.engine.packs.resources import RuleSpec
from poundcake.engine.packs.schema import validate
from poundcake.engine.rules.criteria import compile_criteria
from poundcake.engine.rules.models import RuleDB
from poundcake.engine.triggers.service import (
    acquire_trigger,
    find_trigger,
    get_trigger_type,
    release_trigger,
)
from poundcake.ids import new_id

logger = logging.getLogger(__name__)

RULE_TYPES = frozenset({"standard", "backstop"})


def get_rule(*, session: Session, ref: str) -> RuleDB | None:
    """Return the rule with ``ref`` (``pack.name``), if any."""
    return session.scalars(sa.select(RuleDB).where(RuleDB.ref == ref)).first()


def check_criteria(criteria: Mapping[str, Any]) -> None:
    """Raise FieldError unless the criteria compile: known operators, patterns, valid regexes."""
    compile_criteria(criteria)


def register_rule(*, session: Session, spec: RuleSpec, system_user: str) -> RuleDB:
    """Create or update a rule by ref (an existing one keeps its id) and resolve its trigger."""
    trigger_type = get_trigger_type(session=session, ref=spec.trigger_type)
    if trigger_type is None:
        raise FieldError("trigger.type", f'trigger type "{spec.trigger_type}" does not exist')
    if trigger_type.parameters_schema:
        validate(spec.trigger_parameters, trigger_type.parameters_schema, "trigger.parameters")
    check_criteria(spec.criteria)
    if spec.type["ref"] not in RULE_TYPES:
        raise FieldError("type.ref", f'"{spec.type["ref"]}" is not one of standard, backstop')

    rule = get_rule(session=session, ref=spec.ref)
    trigger = find_trigger(
        session=session, type_ref=trigger_type.ref, parameters=spec.trigger_parameters
    )
    if rule is None or trigger is None or rule.trigger != trigger.ref:
        trigger = acquire_trigger(
            session=session, trigger_type=trigger_type, parameters=spec.trigger_parameters
        )
        if rule is not None:
            release_trigger(session=session, ref=rule.trigger)
    values: dict[str, Any] = {
        "uid": f"rule:{spec.pack}:{spec.name}",
        "name": spec.name,
        "pack": spec.pack,
        "description": spec.description,
        "enabled": spec.enabled,
        "trigger": trigger.ref,
        "criteria": spec.criteria,
        "action": {"ref": spec.action_ref, "parameters": spec.action_parameters},
        "action_ref": spec.action_ref,
        "type": spec.type,
        "context": {"user": system_user, **spec.context},
        "tags": spec.tags,
        "metadata_file": spec.metadata_file,
    }
    if rule is None:
        rule = RuleDB(id=new_id(), ref=spec.ref, **values)
        session.add(rule)
    else:
        for name, value in values.items():
            setattr(rule, name, value)
    session.flush()
    logger.debug("Registered rule %s on trigger %s", spec.ref, trigger.ref)
    return rule
