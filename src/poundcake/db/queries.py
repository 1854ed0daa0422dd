"""What every resource shares: lookup by ref or id, registration by ref (update or insert), and
one counted page of a filtered list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.db.base import Base
from poundcake.exceptions import NotFoundError
from poundcake.ids import new_id

M = TypeVar("M", bound=Base)


def find_by_ref_or_id(session: Session, model: type[M], ref_or_id: str) -> M:
    """Return the row whose ``ref`` (else ``id``) is ``ref_or_id``; StackStorm's 404 otherwise."""
    ref_column = getattr(model, "ref")  # noqa: B009 - every resource model has a ref column
    found = session.scalars(sa.select(model).where(ref_column == ref_or_id)).first()
    found = found or session.get(model, ref_or_id)
    if found is None:
        raise NotFoundError(f'Resource with a reference or id "{ref_or_id}" not found')
    return found


def upsert_by_key(
    session: Session,
    model: type[M],
    key: tuple[str, Any],
    values: Mapping[str, Any],
    *,
    on_insert: Mapping[str, Any] | None = None,
) -> M:
    """Update the row whose ``key`` column (``("ref", ...)``) has that value with ``values``, or
    insert one with a new id, the key, ``values`` and ``on_insert``; flush, and return the row.

    An existing row keeps its id, so what refers to it by id (executions, enforcements) stays
    linked when its pack is registered again.
    """
    column, wanted = key
    found = session.scalars(sa.select(model).where(getattr(model, column) == wanted)).first()
    if found is None:
        found = model(id=new_id(), **{column: wanted}, **values, **(on_insert or {}))
        session.add(found)
    else:
        for name, value in values.items():
            setattr(found, name, value)
    session.flush()
    return found


def counted_page(
    session: Session,
    model: type[M],
    conditions: Sequence[sa.ColumnElement[bool]],
    order_by: Sequence[Any],
    offset: int,
    limit: int | None,
) -> tuple[int, list[M]]:
    """Return how many rows match ``conditions`` and one page of them in ``order_by`` order."""
    total = session.scalar(sa.select(sa.func.count()).select_from(model).where(*conditions))
    query = sa.select(model).where(*conditions).order_by(*order_by).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return int(total or 0), list(session.scalars(query))
