"""Run safety (issue 21): a CAB's run safety fields, an episode's verification and retries of
abandoned runs, and the Alertmanager silences made while CABs run (``poundcake_silences``).

Revision ID: 0004_poundcake
Revises: 0003_poundcake
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, JSONType, UTCDateTime

revision = "0004_poundcake"
down_revision = "0003_poundcake"
branch_labels = None
depends_on = None

ALERT_COLUMNS = (
    ("verification", sa.String(16)),
    ("verify_by", UTCDateTime()),
    ("verification_reason", sa.Text()),
    ("follow_up_requested_at", UTCDateTime()),
    ("follow_up_execution_id", IdType()),
    ("retry_of", IdType()),
    ("retry_requested_at", UTCDateTime()),
)


def upgrade() -> None:
    with op.batch_alter_table("poundcake_st2_rule_extensions") as batch:
        batch.add_column(sa.Column("run_safety", JSONType(), nullable=True))
    with op.batch_alter_table("poundcake_alerts") as batch:
        for name, column_type in ALERT_COLUMNS:
            batch.add_column(sa.Column(name, column_type, nullable=True))
        batch.add_column(
            sa.Column("abandoned_retries", sa.Integer(), nullable=False, server_default="0")
        )
        batch.create_index("ix_poundcake_alerts_verification", ["verification"])
    op.create_table(
        "poundcake_silences",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("alert_id", IdType(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("cab_name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("silence_id", sa.String(64)),
        sa.Column("matchers", JSONType(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("expired_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_poundcake_silences"),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["poundcake_alerts.id"],
            name="fk_poundcake_silences_alert_id",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("alert_id", name="uq_poundcake_silences_alert_id"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_poundcake_silences_request_id", "poundcake_silences", ["request_id"])
    op.create_index(
        "ix_poundcake_silences_state_updated_at", "poundcake_silences", ["state", "updated_at"]
    )


def downgrade() -> None:
    op.drop_table("poundcake_silences")
    with op.batch_alter_table("poundcake_alerts") as batch:
        batch.drop_index("ix_poundcake_alerts_verification")
        batch.drop_column("abandoned_retries")
        for name, _ in reversed(ALERT_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("poundcake_st2_rule_extensions") as batch:
        batch.drop_column("run_safety")
