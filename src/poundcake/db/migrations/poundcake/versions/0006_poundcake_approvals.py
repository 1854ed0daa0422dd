"""Approvals (issue 21): ``poundcake_approvals``, one approval per alert episode and CAB.

Revision ID: 0006_poundcake
Revises: 0005_poundcake
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, UTCDateTime

revision = "0006_poundcake"
down_revision = "0005_poundcake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poundcake_approvals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", IdType(), nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("cab_name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("inquiry_id", sa.String(64)),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("answered_at", UTCDateTime()),
        sa.Column("answered_by", sa.String(255)),
        sa.Column("answered_via", sa.String(16)),
        sa.Column("comment", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_poundcake_approvals"),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["poundcake_alerts.id"],
            name="fk_poundcake_approvals_alert_id",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "alert_id", "cab_name", name="uq_poundcake_approvals_alert_id_cab_name"
        ),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_poundcake_approvals_request_id", "poundcake_approvals", ["request_id"])
    op.create_index("ix_poundcake_approvals_inquiry_id", "poundcake_approvals", ["inquiry_id"])
    op.create_index(
        "ix_poundcake_approvals_state_expires_at", "poundcake_approvals", ["state", "expires_at"]
    )


def downgrade() -> None:
    op.drop_table("poundcake_approvals")
