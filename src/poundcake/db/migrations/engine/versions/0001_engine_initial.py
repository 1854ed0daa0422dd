"""The engine schema: StackStorm's resources as MariaDB tables.

Revision ID: 0001_engine
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

from poundcake.db.base import MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, JSONType, MediumText, UTCDateTime

revision = "0001_engine"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column[str]:
    return sa.Column("id", IdType(), primary_key=True)


def _name(column: str, length: int = 255, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(column, sa.String(length), nullable=nullable)


def _json(column: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(column, JSONType(), nullable=nullable)


def _create(table: str, *items: SchemaItem) -> None:
    op.create_table(table, *items, **MYSQL_TABLE_OPTIONS)


def _ref_columns() -> list[SchemaItem]:
    return [_name("uid"), _name("ref"), _name("name"), _name("pack")]


def upgrade() -> None:
    _create(
        "runner_type_db",
        _id(),
        _name("uid"),
        _name("name"),
        sa.Column("description", sa.Text()),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _name("runner_package", nullable=True),
        _name("runner_module", nullable=True),
        _json("runner_parameters"),
        _name("output_key", nullable=True),
        _json("output_schema"),
        _name("query_module", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runner_type_db"),
        sa.UniqueConstraint("name", name="uq_runner_type_db_name"),
    )
    _create(
        "pack_db",
        _id(),
        _name("uid"),
        _name("ref"),
        _name("name"),
        sa.Column("description", sa.Text()),
        _json("keywords"),
        _name("version", 64, nullable=True),
        _name("stackstorm_version", 64, nullable=True),
        _json("python_versions"),
        _name("author", nullable=True),
        _name("email", nullable=True),
        _json("contributors"),
        _json("files"),
        _name("path", 1024, nullable=True),
        _json("dependencies"),
        _json("system"),
        sa.PrimaryKeyConstraint("id", name="pk_pack_db"),
        sa.UniqueConstraint("ref", name="uq_pack_db_ref"),
    )
    _create(
        "action_db",
        _id(),
        *_ref_columns(),
        sa.Column("description", sa.Text()),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _name("entry_point", 1024),
        _name("runner_type"),
        _json("parameters"),
        _json("output_schema"),
        _json("tags"),
        _json("notify"),
        _name("metadata_file", 1024, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_action_db"),
        sa.UniqueConstraint("ref", name="uq_action_db_ref"),
        sa.UniqueConstraint("pack", "name", name="uq_action_db_pack_name"),
    )
    _create(
        "execution_db",
        _id(),
        _name("action"),
        _json("action_snapshot"),
        _json("runner"),
        _name("runner_type"),
        sa.Column("liveaction_id", IdType()),
        _json("liveaction"),
        _name("status", 32),
        sa.Column("start_timestamp", UTCDateTime(), nullable=False),
        sa.Column("end_timestamp", UTCDateTime()),
        _json("parameters"),
        _json("result", nullable=True),
        sa.Column("result_size", sa.BigInteger(), nullable=False),
        sa.Column("result_truncated", sa.Boolean(), nullable=False),
        _json("context"),
        _name("context_user", nullable=True),
        sa.Column("parent", IdType()),
        _json("children"),
        _json("log"),
        sa.Column("delay", sa.Integer()),
        _json("rule", nullable=True),
        _name("rule_ref", nullable=True),
        _json("trigger", nullable=True),
        _json("trigger_type", nullable=True),
        _json("trigger_instance", nullable=True),
        sa.Column("trigger_instance_id", IdType()),
        _name("web_url", 1024, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_execution_db"),
    )
    for columns in (
        ["action"],
        ["liveaction_id"],
        ["start_timestamp"],
        ["context_user"],
        ["rule_ref"],
        ["trigger_instance_id"],
        ["status", "start_timestamp"],
        ["parent", "start_timestamp"],
    ):
        op.create_index(f"ix_execution_db_{'_'.join(columns)}", "execution_db", columns)
    _create(
        "liveaction_db",
        _id(),
        _name("action"),
        sa.Column("action_is_workflow", sa.Boolean(), nullable=False),
        _json("parameters"),
        _name("status", 32),
        sa.Column("start_timestamp", UTCDateTime(), nullable=False),
        sa.Column("end_timestamp", UTCDateTime()),
        _json("result", nullable=True),
        _json("context"),
        _json("callback"),
        _json("runner_info"),
        _json("notify"),
        sa.Column("delay", sa.Integer()),
        _name("workflow_execution", nullable=True),
        _name("task_execution", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_liveaction_db"),
    )
    op.create_index(
        "ix_liveaction_db_status_start_timestamp", "liveaction_db", ["status", "start_timestamp"]
    )
    _create(
        "execution_output_db",
        _id(),
        sa.Column("execution_id", IdType(), nullable=False),
        _name("action_ref"),
        _name("runner_ref"),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        _name("output_type", 32),
        sa.Column("data", MediumText(), nullable=False),
        sa.Column("delay", sa.Integer()),
        sa.PrimaryKeyConstraint("id", name="pk_execution_output_db"),
    )
    op.create_index(
        "ix_execution_output_db_execution_id_id", "execution_output_db", ["execution_id", "id"]
    )
    op.create_index("ix_execution_output_db_timestamp", "execution_output_db", ["timestamp"])
    _create(
        "trigger_type_db",
        _id(),
        *_ref_columns(),
        sa.Column("description", sa.Text()),
        _json("payload_schema"),
        _json("parameters_schema"),
        _json("tags"),
        _name("metadata_file", 1024, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trigger_type_db"),
        sa.UniqueConstraint("ref", name="uq_trigger_type_db_ref"),
        sa.UniqueConstraint("pack", "name", name="uq_trigger_type_db_pack_name"),
    )
    _create(
        "trigger_db",
        _id(),
        *_ref_columns(),
        _name("type"),
        _json("parameters"),
        sa.Column("description", sa.Text()),
        sa.Column("ref_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trigger_db"),
        sa.UniqueConstraint("ref", name="uq_trigger_db_ref"),
    )
    op.create_index("ix_trigger_db_type", "trigger_db", ["type"])
    _create(
        "trigger_instance_db",
        _id(),
        _name("trigger"),
        _json("payload"),
        sa.Column("occurrence_time", UTCDateTime(), nullable=False),
        _name("status", 32),
        sa.PrimaryKeyConstraint("id", name="pk_trigger_instance_db"),
    )
    op.create_index(
        "ix_trigger_instance_db_trigger_occurrence_time",
        "trigger_instance_db",
        ["trigger", "occurrence_time"],
    )
    op.create_index(
        "ix_trigger_instance_db_occurrence_time", "trigger_instance_db", ["occurrence_time"]
    )
    op.create_index("ix_trigger_instance_db_status", "trigger_instance_db", ["status"])
    _create(
        "rule_db",
        _id(),
        *_ref_columns(),
        sa.Column("description", sa.Text()),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _name("trigger"),
        _json("criteria"),
        _json("action"),
        _name("action_ref"),
        _json("type"),
        _json("context"),
        _json("tags"),
        _name("metadata_file", 1024, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rule_db"),
        sa.UniqueConstraint("ref", name="uq_rule_db_ref"),
        sa.UniqueConstraint("pack", "name", name="uq_rule_db_pack_name"),
    )
    op.create_index("ix_rule_db_trigger", "rule_db", ["trigger"])
    op.create_index("ix_rule_db_action_ref", "rule_db", ["action_ref"])
    _create(
        "rule_enforcement_db",
        _id(),
        sa.Column("trigger_instance_id", IdType(), nullable=False),
        sa.Column("execution_id", IdType()),
        _json("rule"),
        _name("rule_ref"),
        sa.Column("enforced_at", UTCDateTime(), nullable=False),
        _name("status", 32),
        sa.Column("failure_reason", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_rule_enforcement_db"),
    )
    for column in ("trigger_instance_id", "execution_id", "rule_ref", "enforced_at"):
        op.create_index(f"ix_rule_enforcement_db_{column}", "rule_enforcement_db", [column])
    _create(
        "webhook_db",
        _id(),
        _name("name"),
        _name("type"),
        _name("url", 767),
        _name("trigger"),
        sa.Column("description", sa.Text()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_db"),
        sa.UniqueConstraint("url", name="uq_webhook_db_url"),
    )
    op.create_index("ix_webhook_db_trigger", "webhook_db", ["trigger"])
    _create(
        "user_db",
        _id(),
        _name("name"),
        sa.Column("is_service", sa.Boolean(), nullable=False),
        _json("nicknames"),
        _name("password_hash", nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_user_db"),
        sa.UniqueConstraint("name", name="uq_user_db_name"),
    )
    _create(
        "token_db",
        _id(),
        _name("user"),
        _name("token_hash", 128),
        sa.Column("expiry", UTCDateTime(), nullable=False),
        _json("metadata"),
        sa.Column("service", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_token_db"),
        sa.UniqueConstraint("token_hash", name="uq_token_db_token_hash"),
    )
    op.create_index("ix_token_db_user", "token_db", ["user"])
    op.create_index("ix_token_db_expiry", "token_db", ["expiry"])
    _create(
        "api_key_db",
        _id(),
        _name("uid"),
        _name("user"),
        _name("key_hash", 128),
        _json("metadata"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_key_db"),
        sa.UniqueConstraint("key_hash", name="uq_api_key_db_key_hash"),
    )
    op.create_index("ix_api_key_db_user", "api_key_db", ["user"])
    _create(
        "key_value_pair_db",
        _id(),
        _name("uid", 768),
        _name("name", 512),
        _name("scope", 32),
        sa.Column("value", MediumText(), nullable=False),
        sa.Column("secret", sa.Boolean(), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("expire_timestamp", UTCDateTime()),
        _name("user", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_key_value_pair_db"),
        sa.UniqueConstraint("scope", "name", name="uq_key_value_pair_db_scope_name"),
    )
    op.create_index(
        "ix_key_value_pair_db_expire_timestamp", "key_value_pair_db", ["expire_timestamp"]
    )


def downgrade() -> None:
    for table in (
        "key_value_pair_db",
        "api_key_db",
        "token_db",
        "user_db",
        "webhook_db",
        "rule_enforcement_db",
        "rule_db",
        "trigger_instance_db",
        "trigger_db",
        "trigger_type_db",
        "execution_output_db",
        "liveaction_db",
        "execution_db",
        "action_db",
        "pack_db",
        "runner_type_db",
    ):
        op.drop_table(table)
