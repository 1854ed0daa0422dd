"""Action aliases in the database: registered from packs, created and changed through the API.

An alias is upserted by ref (``pack.name``), so registering a pack again keeps its ids. As in
StackStorm, the aliased action need not exist when the alias is registered: running the alias
fails until it does. A format that is not a valid expression is registered with a warning (as
StackStorm registers it) and never matches.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.queries import upsert_by_key
from poundcake.engine.aliases.formats import AliasFormatError, compile_format, format_choices
from poundcake.engine.aliases.models import ActionAliasDB
from poundcake.engine.packs.fields import Fields
from poundcake.engine.packs.resources import ALIAS_FIELDS, AliasSpec, alias_spec
from poundcake.engine.rbac.uids import content_uid
from poundcake.exceptions import ConflictError, NotFoundError

logger = logging.getLogger(__name__)


def format_problems(formats: list[Any]) -> list[str]:
    """Why each format that can never match is broken, naming it by its field."""
    problems = []
    for index, entry in enumerate(formats):
        for choice in format_choices(entry):
            if not choice.representation:
                continue
            try:
                compile_format(choice.representation)
            except AliasFormatError as error:
                problems.append(f"formats.{index}: {error}; it never matches")
    return problems


def register_alias(*, session: Session, spec: AliasSpec) -> ActionAliasDB:
    """Create or update an alias by ref (an existing one keeps its id)."""
    values: dict[str, Any] = {
        "uid": content_uid("action_alias", spec.pack, spec.name),
        "name": spec.name,
        "pack": spec.pack,
        "description": spec.description,
        "enabled": spec.enabled,
        "action_ref": spec.action_ref,
        "formats": spec.formats,
        "ack": spec.ack,
        "result": spec.result,
        "extra": spec.extra,
        "immutable_parameters": spec.immutable_parameters,
        "metadata_file": spec.metadata_file,
    }
    alias = upsert_by_key(session, ActionAliasDB, ("ref", spec.ref), values)
    logger.debug("Registered action alias %s", spec.ref)
    return alias


def get_alias(*, session: Session, ref: str) -> ActionAliasDB | None:
    """Return the alias with ``ref``, if any."""
    return session.scalars(sa.select(ActionAliasDB).where(ActionAliasDB.ref == ref)).first()


def find_alias(*, session: Session, ref_or_id: str) -> ActionAliasDB:
    """Return an alias by ref, else by id; NotFoundError otherwise."""
    alias = get_alias(session=session, ref=ref_or_id) or session.get(ActionAliasDB, ref_or_id)
    if alias is None:
        raise NotFoundError(f'Resource with a reference or id "{ref_or_id}" not found')
    return alias


def find_alias_by_name(*, session: Session, name: str) -> ActionAliasDB:
    """Return the alias named ``name`` (the first by pack if several packs have one)."""
    query = sa.select(ActionAliasDB).where(ActionAliasDB.name == name)
    alias = session.scalars(query.order_by(ActionAliasDB.pack)).first()
    if alias is None:
        raise NotFoundError(f'Unable to identify action alias with name "{name}".')
    return alias


def alias_spec_from_document(document: Mapping[str, Any]) -> AliasSpec:
    """Read an ActionAlias API document; ``pack`` is required, as in StackStorm's schema."""
    fields = Fields(document)
    fields.only(ALIAS_FIELDS)
    pack = fields.required_string("pack")
    metadata_file = fields.optional_string("metadata_file") or None
    return alias_spec(fields, pack=pack, metadata_file=metadata_file)


def create_alias(*, session: Session, document: Mapping[str, Any]) -> ActionAliasDB:
    """Create an alias; a ref already taken is a ConflictError."""
    spec = alias_spec_from_document(document)
    if get_alias(session=session, ref=spec.ref) is not None:
        raise ConflictError(
            f'Tried to save duplicate unique keys. Action alias "{spec.ref}" exists already.'
        )
    _log_problems(spec)
    return register_alias(session=session, spec=spec)


def update_alias(
    *, session: Session, alias: ActionAliasDB, document: Mapping[str, Any]
) -> ActionAliasDB:
    """Replace an alias with ``document``; it keeps its id, and may be renamed or moved."""
    spec = alias_spec_from_document(document)
    if spec.ref != alias.ref:
        if get_alias(session=session, ref=spec.ref) is not None:
            raise ConflictError(
                f'Tried to save duplicate unique keys. Action alias "{spec.ref}" exists already.'
            )
        alias.ref = spec.ref
        session.flush()
    _log_problems(spec)
    return register_alias(session=session, spec=spec)


def _log_problems(spec: AliasSpec) -> None:
    for problem in format_problems(spec.formats):
        logger.warning("Action alias %s: %s", spec.ref, problem)


def delete_alias(*, session: Session, alias: ActionAliasDB) -> None:
    """Delete an alias."""
    session.delete(alias)
    session.flush()
    logger.info("Action alias %s deleted", alias.ref)


@dataclass(frozen=True)
class AliasFilters:
    """What ``GET /v1/actionalias`` may filter on."""

    pack: str | None = None
    name: str | None = None


def list_aliases(
    *, session: Session, filters: AliasFilters, offset: int, limit: int | None
) -> tuple[int, list[ActionAliasDB]]:
    """Return how many aliases match and one page of them, by pack and name."""
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.pack:
        conditions.append(ActionAliasDB.pack == filters.pack)
    if filters.name:
        conditions.append(ActionAliasDB.name == filters.name)
    count = sa.select(sa.func.count()).select_from(ActionAliasDB).where(*conditions)
    query = (
        sa.select(ActionAliasDB)
        .where(*conditions)
        .order_by(ActionAliasDB.pack, ActionAliasDB.name)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return session.scalar(count) or 0, list(session.scalars(query))
