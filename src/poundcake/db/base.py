"""The declarative base and table conventions shared by engine and PoundCake models.

Engine tables are declared in the placeholder schema :data:`ENGINE_SCHEMA`. Each SQLAlchemy engine
translates it (``schema_translate_map``) to where the engine's tables really are: the same
database (None) or a separate one such as ``stackstorm``. The optional ``table_prefix`` is added
by :mod:`poundcake.db.engine`, so one set of models serves every layout.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

ENGINE_SCHEMA = "st2_engine"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}

ENGINE_TABLE_ARGS: dict[str, Any] = {"schema": ENGINE_SCHEMA, **MYSQL_TABLE_OPTIONS}


class Base(DeclarativeBase):
    """Base of every mapped class, engine and PoundCake alike."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> sa.Table:
    """The Core table of a mapped class, for hot-path multi-row inserts that skip the ORM."""
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table
