"""Alert deliveries (the intake's outbox) and the remediation columns of an alert episode.

Revision ID: 0002_poundcake
Revises: 0001_poundcake
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, UTCDateTime

revision = "0002_poundcake"
down_revision = "0001_poundcake"
branch_labels = None
depends_on = None

ALERT_COLUMNS = (
    ("cab_name", sa.String(255)),
    ("dispatch_key", sa.String(64)),
    ("trigger_instance_id", IdType()),
    ("workflow_execution_id", IdType()),
    ("state_reason", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("poundcake_alerts") as batch:
        for name, column_type in ALERT_COLUMNS:
            batch.add_column(sa.Column(name, column_type, nullable=True))
    op.create_table(
        "poundcake_alert_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", IdType(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("notification_reason", sa.String(64)),
        sa.Column("receiver", sa.String(255)),
        sa.Column("group_key", sa.Text()),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("relayed_at", UTCDateTime()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", UTCDateTime()),
        sa.Column("outcome", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_poundcake_alert_deliveries"),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["poundcake_alerts.id"],
            name="fk_poundcake_alert_deliveries_alert_id",
            ondelete="CASCADE",
        ),
        **MYSQL_TABLE_OPTIONS,
    )
    for name, columns in (
        ("ix_poundcake_alert_deliveries_alert_id", ["alert_id"]),
        ("ix_poundcake_alert_deliveries_request_id", ["request_id"]),
        ("ix_poundcake_alert_deliveries_processed_at_id", ["processed_at", "id"]),
    ):
        op.create_index(name, "poundcake_alert_deliveries", columns)


def downgrade() -> None:
    op.drop_table("poundcake_alert_deliveries")
    with op.batch_alter_table("poundcake_alerts") as batch:
        for name, _column_type in reversed(ALERT_COLUMNS):
            batch.drop_column(name)
