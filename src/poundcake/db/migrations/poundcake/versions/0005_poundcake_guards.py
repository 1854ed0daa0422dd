"""The admission guards: the decision log, guard rows, target leases, breakers, group members,
the guard fields of each CAB's rule extension, and an index on when each episode was stored.

Revision ID: 0005_poundcake
Revises: 0004_poundcake
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, JSONType, UTCDateTime

revision = "0005_poundcake"
down_revision = "0004_poundcake"
branch_labels = None
depends_on = None


def _decisions() -> None:
    op.create_table(
        "poundcake_decisions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", IdType(), nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("cab_name", sa.String(255), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("group_key", sa.String(255), nullable=False),
        sa.Column("target", sa.String(255)),
        sa.Column("blast_group", sa.String(255)),
        sa.Column("rendered", JSONType()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_poundcake_decisions"),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["poundcake_alerts.id"],
            name="fk_poundcake_decisions_alert_id",
            ondelete="CASCADE",
        ),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_poundcake_decisions_alert_id", "poundcake_decisions", ["alert_id"])
    op.create_index("ix_poundcake_decisions_request_id", "poundcake_decisions", ["request_id"])
    op.create_index("ix_poundcake_decisions_created_at", "poundcake_decisions", ["created_at"])
    op.create_index(
        "ix_poundcake_decisions_cab_name_decision_group_key_created_at",
        "poundcake_decisions",
        ["cab_name", "decision", "group_key", "created_at"],
    )


def _state_tables() -> None:
    op.create_table(
        "poundcake_guard_rows",
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name="pk_poundcake_guard_rows"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "poundcake_target_locks",
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("alert_id", IdType(), nullable=False),
        sa.Column("cab_name", sa.String(255), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("target", name="pk_poundcake_target_locks"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_poundcake_target_locks_alert_id", "poundcake_target_locks", ["alert_id"])
    op.create_table(
        "poundcake_breakers",
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("opened_at", UTCDateTime()),
        sa.Column("tripped_at", UTCDateTime()),
        sa.Column("reset_at", UTCDateTime()),
        sa.Column("trips", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.PrimaryKeyConstraint("scope", name="pk_poundcake_breakers"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "poundcake_guard_members",
        sa.Column("scope", sa.String(255), nullable=False),
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "member", name="pk_poundcake_guard_members"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index(
        "ix_poundcake_guard_members_scope_seen_at",
        "poundcake_guard_members",
        ["scope", "seen_at"],
    )


def upgrade() -> None:
    with op.batch_alter_table("poundcake_st2_rule_extensions") as batch:
        batch.add_column(sa.Column("guards", JSONType(), nullable=True))
    op.create_index("ix_poundcake_alerts_created_at", "poundcake_alerts", ["created_at"])
    _decisions()
    _state_tables()


def downgrade() -> None:
    for table in (
        "poundcake_guard_members",
        "poundcake_breakers",
        "poundcake_target_locks",
        "poundcake_guard_rows",
        "poundcake_decisions",
    ):
        op.drop_table(table)
    op.drop_index("ix_poundcake_alerts_created_at", table_name="poundcake_alerts")
    with op.batch_alter_table("poundcake_st2_rule_extensions") as batch:
        batch.drop_column("guards")
