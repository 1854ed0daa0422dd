"""Orquesta workflows: workflow and task executions, context entries, and the actions tasks run.

Revision ID: 0005_engine
Revises: 0004_engine
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, JSONType, MediumText, UTCDateTime

revision = "0005_engine"
down_revision = "0004_engine"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_execution_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("action_execution", IdType(), nullable=False),
        sa.Column("spec", JSONType(), nullable=False),
        sa.Column("input", JSONType(), nullable=False),
        sa.Column("context", JSONType(), nullable=False),
        sa.Column("state", JSONType(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("output", JSONType()),
        sa.Column("errors", JSONType(), nullable=False),
        sa.Column("sealed", sa.Boolean(), nullable=False),
        sa.Column("start_timestamp", UTCDateTime(), nullable=False),
        sa.Column("end_timestamp", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_execution_db"),
        sa.UniqueConstraint("action_execution", name="uq_workflow_execution_db_action_execution"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_workflow_execution_db_status", "workflow_execution_db", ["status"])
    op.create_table(
        "task_execution_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("workflow_execution", IdType(), nullable=False),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("task_id", sa.String(255), nullable=False),
        sa.Column("task_route", sa.Integer(), nullable=False),
        sa.Column("task_spec", JSONType(), nullable=False),
        sa.Column("delay", sa.Integer()),
        sa.Column("itemized", sa.Boolean(), nullable=False),
        sa.Column("items_count", sa.Integer()),
        sa.Column("items_concurrency", sa.Integer()),
        sa.Column("context", JSONType(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("result", JSONType()),
        sa.Column("start_timestamp", UTCDateTime(), nullable=False),
        sa.Column("end_timestamp", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_task_execution_db"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index(
        "ix_task_execution_db_workflow_execution_task_id_task_route",
        "task_execution_db",
        ["workflow_execution", "task_id", "task_route"],
    )
    op.create_table(
        "workflow_context_db",
        sa.Column("workflow_execution", IdType(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("data", MediumText(), nullable=False),
        sa.PrimaryKeyConstraint("workflow_execution", "position", name="pk_workflow_context_db"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "workflow_action_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("workflow_execution", IdType(), nullable=False),
        sa.Column("task_execution", IdType(), nullable=False),
        sa.Column("item_id", sa.Integer()),
        sa.Column("action", sa.String(1024)),
        sa.Column("input", JSONType()),
        sa.Column("action_execution", IdType()),
        sa.Column("status", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workflow_action_db"),
        sa.UniqueConstraint("action_execution", name="uq_workflow_action_db_action_execution"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index(
        "ix_workflow_action_db_workflow_execution_status",
        "workflow_action_db",
        ["workflow_execution", "status"],
    )
    op.create_index(
        "ix_workflow_action_db_task_execution_item_id",
        "workflow_action_db",
        ["task_execution", "item_id"],
    )


def downgrade() -> None:
    op.drop_table("workflow_action_db")
    op.drop_table("workflow_context_db")
    op.drop_index("ix_task_execution_db_workflow_execution_task_id_task_route", "task_execution_db")
    op.drop_table("task_execution_db")
    op.drop_index("ix_workflow_execution_db_status", "workflow_execution_db")
    op.drop_table("workflow_execution_db")
