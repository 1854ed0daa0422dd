"""Action aliases: ``action_alias_db``.

Revision ID: 0007_engine_aliases
Revises: 0006_engine
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, JSONType

revision = "0007_engine_aliases"
down_revision = "0006_engine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "action_alias_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("uid", sa.String(255), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("pack", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("action_ref", sa.String(255), nullable=False),
        sa.Column("formats", JSONType(), nullable=False),
        sa.Column("ack", JSONType(), nullable=False),
        sa.Column("result", JSONType(), nullable=False),
        sa.Column("extra", JSONType(), nullable=False),
        sa.Column("immutable_parameters", JSONType(), nullable=False),
        sa.Column("metadata_file", sa.String(1024)),
        sa.PrimaryKeyConstraint("id", name="pk_action_alias_db"),
        sa.UniqueConstraint("ref", name="uq_action_alias_db_ref"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_action_alias_db_name", "action_alias_db", ["name"])


def downgrade() -> None:
    op.drop_index("ix_action_alias_db_name", "action_alias_db")
    op.drop_table("action_alias_db")
