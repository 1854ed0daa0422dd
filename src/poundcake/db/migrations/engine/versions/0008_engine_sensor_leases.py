"""Sensor leases: which sensor container runs each sensor, and the sensor's status.

Revision ID: 0008_engine_sensors
Revises: 0007_engine_aliases
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import UTCDateTime

revision = "0008_engine_sensors"
down_revision = "0007_engine_aliases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sensor_lease_db",
        sa.Column("sensor_ref", sa.String(255), nullable=False),
        sa.Column("holder", sa.String(255)),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("pid", sa.Integer()),
        sa.Column("exit_code", sa.Integer()),
        sa.Column("spawn_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sensor_ref", name="pk_sensor_lease_db"),
        **MYSQL_TABLE_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("sensor_lease_db")
