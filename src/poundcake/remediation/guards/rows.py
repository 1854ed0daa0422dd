"""Rows the guards lock: created if missing, then taken with ``SELECT ... FOR UPDATE``.

MariaDB runs PoundCake's transactions at READ COMMITTED, where locking a row that does not exist
locks nothing; so a row is first inserted if missing (``INSERT IGNORE``, SQLite's ``OR IGNORE``)
and then locked, or both at once with ``INSERT ... ON DUPLICATE KEY UPDATE``. SQLite has no row
locks: its writers are serialised by the database lock the episode's alert row already took.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Session

from poundcake.db.base import Base, table_of
from poundcake.db.types import utcnow
from poundcake.remediation.guards.models import GuardRow


def insert_missing(session: Session, model: type[Base], values: dict[str, Any]) -> None:
    """Insert ``values`` unless a row with the same key exists (never raises on a duplicate)."""
    prefix = "OR IGNORE" if session.get_bind().dialect.name == "sqlite" else "IGNORE"
    session.execute(sa.insert(table_of(model)).prefix_with(prefix).values(**values))


def lock_scope(session: Session, scope: str) -> None:
    """Hold the guard row of ``scope`` until the transaction ends: one decision at a time.

    On MariaDB one ``INSERT ... ON DUPLICATE KEY UPDATE`` creates the row or, when it exists,
    takes its exclusive lock (as ``SELECT ... FOR UPDATE`` would) in a single round trip.
    """
    values = {"scope": scope, "created_at": utcnow()}
    if session.get_bind().dialect.name == "sqlite":
        insert_missing(session, GuardRow, values)
        return
    statement = mysql.insert(table_of(GuardRow)).values(**values)
    session.execute(statement.on_duplicate_key_update(scope=statement.inserted.scope))
