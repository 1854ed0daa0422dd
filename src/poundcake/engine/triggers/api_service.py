"""Trigger types and triggers as the API reads them: by ref or id, and filtered lists."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.queries import counted_page, find_by_ref_or_id
from poundcake.engine.triggers.models import TriggerDB, TriggerTypeDB


def find_trigger_type(*, session: Session, ref_or_id: str) -> TriggerTypeDB:
    """Return a trigger type by ref, else by id; NotFoundError otherwise."""
    return find_by_ref_or_id(session, TriggerTypeDB, ref_or_id)


def list_trigger_types(
    *,
    session: Session,
    offset: int,
    limit: int | None,
    pack: str | None = None,
    name: str | None = None,
) -> tuple[int, list[TriggerTypeDB]]:
    """Return how many trigger types match and one page of them, by pack and name."""
    conditions: list[sa.ColumnElement[bool]] = []
    if pack:
        conditions.append(TriggerTypeDB.pack == pack)
    if name:
        conditions.append(TriggerTypeDB.name == name)
    order = (TriggerTypeDB.pack, TriggerTypeDB.name)
    return counted_page(session, TriggerTypeDB, conditions, order, offset, limit)


def find_trigger_by_ref_or_id(*, session: Session, ref_or_id: str) -> TriggerDB:
    """Return a trigger by ref, else by id; NotFoundError otherwise."""
    return find_by_ref_or_id(session, TriggerDB, ref_or_id)


def list_triggers(
    *,
    session: Session,
    offset: int,
    limit: int | None,
    type_ref: str | None = None,
    pack: str | None = None,
    name: str | None = None,
) -> tuple[int, list[TriggerDB]]:
    """Return how many triggers match and one page of them, by pack and name."""
    conditions: list[sa.ColumnElement[bool]] = []
    if type_ref:
        conditions.append(TriggerDB.type == type_ref)
    if pack:
        conditions.append(TriggerDB.pack == pack)
    if name:
        conditions.append(TriggerDB.name == name)
    order = (TriggerDB.pack, TriggerDB.name)
    return counted_page(session, TriggerDB, conditions, order, offset, limit)
