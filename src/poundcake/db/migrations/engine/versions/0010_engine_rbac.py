"""RBAC: ``role_db``, ``permission_grant_db``, ``user_role_assignment_db``,
``group_to_role_mapping_db``, and StackStorm's three system roles.

Revision ID: 0010_engine_rbac
Revises: 0009_engine_indexes
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, JSONType
from poundcake.ids import new_id

revision = "0010_engine_rbac"
down_revision = "0009_engine_indexes"
branch_labels = None
depends_on = None

SYSTEM_ROLES = ("system_admin", "admin", "observer")


def upgrade() -> None:
    role = op.create_table(
        "role_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("system", sa.Boolean(), nullable=False),
        sa.Column("permission_grants", JSONType(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_role_db"),
        sa.UniqueConstraint("name", name="uq_role_db_name"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_role_db_system", "role_db", ["system"])
    op.create_table(
        "permission_grant_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("resource_uid", sa.String(767)),
        sa.Column("resource_type", sa.String(64)),
        sa.Column("permission_types", JSONType(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_permission_grant_db"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_permission_grant_db_resource_uid", "permission_grant_db", ["resource_uid"])
    op.create_table(
        "user_role_assignment_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("role", sa.String(255), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("is_remote", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_user_role_assignment_db"),
        sa.UniqueConstraint(
            "user", "role", "source", name="uq_user_role_assignment_db_user_role_source"
        ),
        **MYSQL_TABLE_OPTIONS,
    )
    for column in ("user", "role", "source"):
        op.create_index(f"ix_user_role_assignment_db_{column}", "user_role_assignment_db", [column])
    op.create_table(
        "group_to_role_mapping_db",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("group", sa.String(255), nullable=False),
        sa.Column("roles", JSONType(), nullable=False),
        sa.Column("source", sa.String(255)),
        sa.Column("description", sa.Text()),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_group_to_role_mapping_db"),
        sa.UniqueConstraint("group", name="uq_group_to_role_mapping_db_group"),
        **MYSQL_TABLE_OPTIONS,
    )
    # StackStorm's system roles: present from the start, never changed by definition files.
    op.bulk_insert(
        role,
        [
            {
                "id": new_id(),
                "name": name,
                "description": name,
                "system": True,
                "permission_grants": [],
            }
            for name in SYSTEM_ROLES
        ],
    )


def downgrade() -> None:
    op.drop_table("group_to_role_mapping_db")
    for column in ("user", "role", "source"):
        op.drop_index(f"ix_user_role_assignment_db_{column}", "user_role_assignment_db")
    op.drop_table("user_role_assignment_db")
    op.drop_index("ix_permission_grant_db_resource_uid", "permission_grant_db")
    op.drop_table("permission_grant_db")
    op.drop_index("ix_role_db_system", "role_db")
    op.drop_table("role_db")
