"""Rules in the database: registration (a rule file or an API body) that resolves the rule's trigger
and keeps its ``ref_count`` (and so ``webhook_db``) right, and the API's create, update, delete
and lists.

A ``POST`` or ``PUT /v1/rules`` body is read like a rule file (the same fields; ``enabled``
omitted means disabled) and registered with :func:`register_rule`. As in StackStorm, the rule's
``context.user`` is whoever called, and the action need not exist yet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.queries import upsert_by_key
from poundcake.engine.packs.errors import FieldError
from poundcake.engine.packs.fields import Fields
from poundcake.engine.packs.resources import RULE_ACTION_FIELDS, RULE_FIELDS, RuleSpec
from poundcake.engine.packs.schema import validate
from poundcake.engine.rbac.uids import content_uid
from poundcake.engine.rules.criteria import compile_criteria
from poundcake.engine.rules.documents import rule_document
from poundcake.engine.rules.models import RuleDB
from poundcake.engine.triggers.models import TriggerDB
from poundcake.engine.triggers.service import (
    acquire_trigger,
    find_trigger,
    get_trigger_type,
    release_trigger,
)
from poundcake.exceptions import ConflictError, NotFoundError, ValidationError

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
        "uid": content_uid("rule", spec.pack, spec.name),
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
    rule = upsert_by_key(session, RuleDB, ("ref", spec.ref), values)
    logger.debug("Registered rule %s on trigger %s", spec.ref, trigger.ref)
    return rule


DEFAULT_PACK = "default"
RULE_TYPE_FIELDS = frozenset({"ref", "parameters"})


@dataclass(frozen=True)
class RuleFilters:
    """What ``GET /v1/rules`` may filter on; ``trigger`` matches a trigger's ref or its type."""

    pack: str | None = None
    name: str | None = None
    action: str | None = None
    trigger: str | None = None
    enabled: bool | None = None
    user: str | None = None


def rule_spec_from_document(document: Mapping[str, Any], *, user: str) -> RuleSpec:
    """Read a Rule API document (as created, or as the CLI sends it back) into a spec."""
    fields = Fields(document)
    fields.only(RULE_FIELDS)
    trigger = fields.nested("trigger", required=True)
    action = fields.nested("action", required=True)
    action.only(RULE_ACTION_FIELDS)
    rule_type = fields.nested("type")
    rule_type.only(RULE_TYPE_FIELDS)
    return RuleSpec(
        pack=fields.optional_string("pack") or DEFAULT_PACK,
        name=fields.required_string("name"),
        trigger_type=trigger.required_string("type"),
        action_ref=action.required_string("ref"),
        description=fields.optional_string("description"),
        enabled=fields.boolean("enabled", False),
        trigger_parameters=trigger.mapping("parameters"),
        criteria=fields.mapping("criteria"),
        action_parameters=action.mapping("parameters"),
        type={
            "ref": rule_type.optional_string("ref") or "standard",
            "parameters": rule_type.mapping("parameters"),
        },
        context={**fields.mapping("context"), "user": user},
        tags=fields.mapping_list("tags"),
        metadata_file=fields.optional_string("metadata_file") or None,
    )


def _check_trigger_type(session: Session, spec: RuleSpec) -> None:
    if get_trigger_type(session=session, ref=spec.trigger_type) is None:
        raise ValidationError(
            f'Trigger "{spec.trigger_type}" defined in the rule does not exist in system or '
            'it\'s missing required "parameters" attribute'
        )


def _refuse_taken_ref(session: Session, ref: str) -> None:
    if get_rule(session=session, ref=ref) is not None:
        raise ConflictError(f'Tried to save duplicate unique keys. Rule "{ref}" exists already.')


def find_rule(*, session: Session, ref_or_id: str) -> RuleDB:
    """Return a rule by ref, else by id; NotFoundError otherwise."""
    rule = get_rule(session=session, ref=ref_or_id) or session.get(RuleDB, ref_or_id)
    if rule is None:
        raise NotFoundError(f'Resource with a reference or id "{ref_or_id}" not found')
    return rule


def create_rule(*, session: Session, document: Mapping[str, Any], user: str) -> RuleDB:
    """Create a rule for ``user``; a ref already taken is a ConflictError."""
    spec = rule_spec_from_document(document, user=user)
    _check_trigger_type(session, spec)
    _refuse_taken_ref(session, spec.ref)
    rule = register_rule(session=session, spec=spec, system_user=user)
    logger.info("Rule %s created by %s", rule.ref, user)
    return rule


def update_rule(
    *, session: Session, rule: RuleDB, document: Mapping[str, Any], user: str
) -> RuleDB:
    """Replace a rule with ``document``; it keeps its id, and may be renamed or moved."""
    spec = rule_spec_from_document(document, user=user)
    _check_trigger_type(session, spec)
    if spec.ref != rule.ref:
        _refuse_taken_ref(session, spec.ref)
        rule.ref, rule.pack, rule.name = spec.ref, spec.pack, spec.name
        session.flush()
    rule = register_rule(session=session, spec=spec, system_user=user)
    logger.info("Rule %s updated by %s", rule.ref, user)
    return rule


def delete_rule(*, session: Session, rule: RuleDB) -> None:
    """Delete a rule and drop its reference to its trigger."""
    release_trigger(session=session, ref=rule.trigger)
    session.delete(rule)
    session.flush()
    logger.info("Rule %s deleted", rule.ref)


def _conditions(filters: RuleFilters) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.pack:
        conditions.append(RuleDB.pack == filters.pack)
    if filters.name:
        conditions.append(RuleDB.name == filters.name)
    if filters.action:
        conditions.append(RuleDB.action_ref == filters.action)
    if filters.trigger:
        of_type = sa.select(TriggerDB.ref).where(TriggerDB.type == filters.trigger)
        conditions.append(sa.or_(RuleDB.trigger == filters.trigger, RuleDB.trigger.in_(of_type)))
    if filters.enabled is not None:
        conditions.append(RuleDB.enabled == filters.enabled)
    if filters.user:
        conditions.append(RuleDB.context["user"].as_string() == filters.user)
    return conditions


def list_rules(
    *, session: Session, filters: RuleFilters, offset: int, limit: int | None
) -> tuple[int, list[RuleDB]]:
    """Return how many rules match and one page of them, by pack and name."""
    conditions = _conditions(filters)
    total = session.scalar(sa.select(sa.func.count()).select_from(RuleDB).where(*conditions))
    query = sa.select(RuleDB).where(*conditions).order_by(RuleDB.pack, RuleDB.name).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return total or 0, list(session.scalars(query))


def rule_documents(*, session: Session, rules: Iterable[RuleDB]) -> list[dict[str, Any]]:
    """The API documents of ``rules``, their triggers looked up in one query."""
    rules = list(rules)
    refs = {rule.trigger for rule in rules}
    query = sa.select(TriggerDB).where(TriggerDB.ref.in_(refs))
    triggers = {trigger.ref: trigger for trigger in session.scalars(query)} if refs else {}
    return [rule_document(rule, triggers.get(rule.trigger)) for rule in rules]
