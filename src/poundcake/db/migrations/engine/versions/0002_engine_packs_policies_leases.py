"""Pack configs and schemas, sensor types, policies, and runner leases on live actions.

Revision ID: 0002_engine
Revises: 0001_engine
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, JSONType, UTCDateTime

revision = "0002_engine"
down_revision = "0001_engine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("liveaction_db", sa.Column("lease_owner", sa.String(255)))
    op.add_column("liveaction_db", sa.Column("lease_expires_at", UTCDateTime()))
    op.create_index(
        "ix_liveaction_db_status_lease_expires_at", "liveaction_db", ["status", "lease_expires_at"]
    )
    op.create_table(
        "config_schema_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("pack", sa.String(255), nullable=False),
        sa.Column("attributes", JSONType(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_config_schema_db"),
        sa.UniqueConstraint("pack", name="uq_config_schema_db_pack"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "config_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("pack", sa.String(255), nullable=False),
        sa.Column("values", JSONType(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_config_db"),
        sa.UniqueConstraint("pack", name="uq_config_db_pack"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "sensor_type_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("uid", sa.String(255), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("pack", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("class_name", sa.String(255), nullable=False),
        sa.Column("entry_point", sa.String(1024), nullable=False),
        sa.Column("artifact_uri", sa.String(1024)),
        sa.Column("poll_interval", sa.Integer()),
        sa.Column("trigger_types", JSONType(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("metadata_file", sa.String(1024)),
        sa.PrimaryKeyConstraint("id", name="pk_sensor_type_db"),
        sa.UniqueConstraint("ref", name="uq_sensor_type_db_ref"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "policy_type_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("uid", sa.String(255), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("module", sa.String(255)),
        sa.Column("parameters", JSONType(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_type_db"),
        sa.UniqueConstraint("ref", name="uq_policy_type_db_ref"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "policy_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("uid", sa.String(255), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("pack", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("resource_ref", sa.String(255), nullable=False),
        sa.Column("policy_type", sa.String(255), nullable=False),
        sa.Column("parameters", JSONType(), nullable=False),
        sa.Column("metadata_file", sa.String(1024)),
        sa.PrimaryKeyConstraint("id", name="pk_policy_db"),
        sa.UniqueConstraint("ref", name="uq_policy_db_ref"),
        sa.UniqueConstraint("pack", "name", name="uq_policy_db_pack_name"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_policy_db_resource_ref", "policy_db", ["resource_ref"])


def downgrade() -> None:
    for table in ("policy_db", "policy_type_db", "sensor_type_db", "config_db", "config_schema_db"):
        op.drop_table(table)
    op.drop_index("ix_liveaction_db_status_lease_expires_at", "liveaction_db")
    op.drop_column("liveaction_db", "lease_expires_at")
    op.drop_column("liveaction_db", "lease_owner")
