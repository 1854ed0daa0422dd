"""Rules engine and timers: one enforcement per rule and trigger instance, pending instances
oldest first, timer schedules.

Revision ID: 0004_engine
Revises: 0003_engine
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, UTCDateTime

revision = "0004_engine"
down_revision = "0003_engine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_trigger_instance_db_status_occurrence_time",
        "trigger_instance_db",
        ["status", "occurrence_time"],
    )
    with op.batch_alter_table("rule_enforcement_db") as batch:
        batch.create_unique_constraint(
            "uq_rule_enforcement_db_trigger_instance_id_rule_ref",
            ["trigger_instance_id", "rule_ref"],
        )
    op.create_table(
        "timer_schedule_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("trigger_ref", sa.String(255), nullable=False),
        sa.Column("trigger_type", sa.String(255), nullable=False),
        sa.Column("next_fire_at", UTCDateTime(), nullable=True),
        sa.Column("last_fired_at", UTCDateTime(), nullable=True),
        sa.Column("fire_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_timer_schedule_db"),
        sa.UniqueConstraint("trigger_ref", name="uq_timer_schedule_db_trigger_ref"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_timer_schedule_db_next_fire_at", "timer_schedule_db", ["next_fire_at"])


def downgrade() -> None:
    op.drop_index("ix_timer_schedule_db_next_fire_at", "timer_schedule_db")
    op.drop_table("timer_schedule_db")
    with op.batch_alter_table("rule_enforcement_db") as batch:
        batch.drop_constraint("uq_rule_enforcement_db_trigger_instance_id_rule_ref", "unique")
    op.drop_index("ix_trigger_instance_db_status_occurrence_time", "trigger_instance_db")
