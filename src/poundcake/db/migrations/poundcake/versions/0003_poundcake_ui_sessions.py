"""Web UI sessions (``poundcake_ui_sessions``): a hash of each cookie, never the cookie.

Revision ID: 0003_poundcake
Revises: 0002_poundcake
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import UTCDateTime

revision = "0003_poundcake"
down_revision = "0002_poundcake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poundcake_ui_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_poundcake_ui_sessions"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_poundcake_ui_sessions_expires_at", "poundcake_ui_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("poundcake_ui_sessions")
