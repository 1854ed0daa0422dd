"""Trigger types and triggers as the API reads them: by ref or id, and filtered lists."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.triggers.models import TriggerDB, TriggerTypeDB
from poundcake.exceptions import NotFoundError


def find_trigger_type(*, session: Session, ref_or_id: str) -> TriggerTypeDB:
    """Return a trigger type by ref, else by id; NotFoundError otherwise."""
    found = session.scalars(sa.select(TriggerTypeDB).where(TriggerTypeDB.ref == ref_or_id)).first()
    found = found or session.get(TriggerTypeDB, ref_or_id)
    if found is None:
        raise NotFoundError(f'Resource with a reference or id "{ref_or_id}" not found')
    return found


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
    total = session.scalar(sa.select(sa.func.count()).select_from(TriggerTypeDB).where(*conditions))
    query = (
        sa.select(TriggerTypeDB)
        .where(*conditions)
        .order_by(TriggerTypeDB.pack, TriggerTypeDB.name)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return total or 0, list(session.scalars(query))


def find_trigger_by_ref_or_id(*, session: Session, ref_or_id: str) -> TriggerDB:
    """Return a trigger by ref, else by id; NotFoundError otherwise."""
    found = session.scalars(sa.select(TriggerDB).where(TriggerDB.ref == ref_or_id)).first()
    found = found or session.get(TriggerDB, ref_or_id)
    if found is None:
        raise NotFoundError(f'Resource with a reference or id "{ref_or_id}" not found')
    return found


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
    total = session.scalar(sa.select(sa.func.count()).select_from(TriggerDB).where(*conditions))
    query = (
        sa.select(TriggerDB)
        .where(*conditions)
        .order_by(TriggerDB.pack, TriggerDB.name)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return total or 0, list(session.scalars(query))
