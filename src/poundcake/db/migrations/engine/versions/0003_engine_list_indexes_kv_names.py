"""Indexes for the execution list's common filters; case-sensitive datastore key names.

``st2 execution list`` filters top-level executions by status, action or user, newest first:
(parent, status, start_timestamp), (action, start_timestamp) and (context_user,
start_timestamp) serve those pages and counts, replacing the single-column action and
context_user indexes. Datastore names compare byte-wise on MariaDB (``Key`` and ``key`` are two
keys, as in StackStorm).

Revision ID: 0003_engine
Revises: 0002_engine
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003_engine"
down_revision = "0002_engine"
branch_labels = None
depends_on = None

NEW = {
    "ix_execution_db_parent_status_start_timestamp": ["parent", "status", "start_timestamp"],
    "ix_execution_db_action_start_timestamp": ["action", "start_timestamp"],
    "ix_execution_db_context_user_start_timestamp": ["context_user", "start_timestamp"],
}


def _mariadb() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    for name, columns in NEW.items():
        op.create_index(name, "execution_db", columns)
    op.drop_index("ix_execution_db_action", "execution_db")
    op.drop_index("ix_execution_db_context_user", "execution_db")
    if _mariadb():
        op.alter_column(
            "key_value_pair_db",
            "name",
            existing_type=sa.String(512),
            type_=mysql.VARCHAR(512, collation="utf8mb4_bin"),
            existing_nullable=False,
        )


def downgrade() -> None:
    if _mariadb():
        op.alter_column(
            "key_value_pair_db",
            "name",
            existing_type=mysql.VARCHAR(512, collation="utf8mb4_bin"),
            type_=mysql.VARCHAR(512, collation="utf8mb4_unicode_ci"),
            existing_nullable=False,
        )
    op.create_index("ix_execution_db_action", "execution_db", ["action"])
    op.create_index("ix_execution_db_context_user", "execution_db", ["context_user"])
    for name in NEW:
        op.drop_index(name, "execution_db")
