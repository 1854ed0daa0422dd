"""Notifier: finished executions waiting for their notify triggers and post-run policies, and
the notify instruction of Orquesta workflow executions.

Revision ID: 0006_engine
Revises: 0005_engine
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, JSONType, UTCDateTime

revision = "0006_engine"
down_revision = "0005_engine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifier_pending_db",
        sa.Column("liveaction_id", IdType(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("liveaction_id", name="pk_notifier_pending_db"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_notifier_pending_db_created_at", "notifier_pending_db", ["created_at"])
    with op.batch_alter_table("workflow_execution_db") as batch:
        batch.add_column(sa.Column("notify", JSONType(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflow_execution_db") as batch:
        batch.drop_column("notify")
    op.drop_index("ix_notifier_pending_db_created_at", "notifier_pending_db")
    op.drop_table("notifier_pending_db")
