"""PoundCake's tables and the extension tables that link to the engine's.

Foreign keys name the engine's tables by StackStorm's names in the engine's database as the
connection's ``schema_translate_map`` gives it (none when shared); the connection adds the table
prefix, so this one revision serves every layout.

Revision ID: 0001_poundcake
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from poundcake.db.base import ENGINE_SCHEMA, MYSQL_TABLE_OPTIONS
from poundcake.db.types import IdType, JSONType, UTCDateTime

revision = "0001_poundcake"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def _engine_link(owner: str, column: str, table: str, ondelete: str) -> sa.ForeignKeyConstraint:
    translate = op.get_bind().get_execution_options().get("schema_translate_map") or {}
    schema = translate.get(ENGINE_SCHEMA)
    target = f"{schema}.{table}.id" if schema else f"{table}.id"
    return sa.ForeignKeyConstraint(
        [column], [target], name=f"fk_{owner}_{column}", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "poundcake_api_calls",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("status_code", sa.SmallInteger()),
        sa.Column("duration_ms", sa.Float()),
        sa.Column("client_ip", sa.String(64)),
        sa.Column("user_agent", sa.String(512)),
        sa.Column("body_size", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_poundcake_api_calls"),
        sa.UniqueConstraint("request_id", name="uq_poundcake_api_calls_request_id"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_poundcake_api_calls_received_at", "poundcake_api_calls", ["received_at"])
    op.create_table(
        "poundcake_alerts",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime()),
        sa.Column("alert_name", sa.String(255), nullable=False),
        sa.Column("severity", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("labels", JSONType(), nullable=False),
        sa.Column("annotations", JSONType(), nullable=False),
        sa.Column("generator_url", sa.String(2048)),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("last_request_id", sa.String(64), nullable=False),
        sa.Column("request_ids", JSONType(), nullable=False),
        sa.Column("delivery_count", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.Column("resolved_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_poundcake_alerts"),
        sa.UniqueConstraint(
            "fingerprint", "starts_at", name="uq_poundcake_alerts_fingerprint_starts_at"
        ),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_poundcake_alerts_alert_name", "poundcake_alerts", ["alert_name"])
    op.create_index("ix_poundcake_alerts_request_id", "poundcake_alerts", ["request_id"])
    op.create_index(
        "ix_poundcake_alerts_state_updated_at", "poundcake_alerts", ["state", "updated_at"]
    )
    op.create_table(
        "poundcake_st2_action_extensions",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("st2_action_id", IdType(), nullable=False),
        sa.Column("action_type", sa.String(64), nullable=False),
        sa.Column("expected_result_schema", JSONType(), nullable=False),
        sa.Column("parameter_templates", JSONType(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer()),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_poundcake_st2_action_extensions"),
        sa.UniqueConstraint(
            "st2_action_id", name="uq_poundcake_st2_action_extensions_st2_action_id"
        ),
        _engine_link("poundcake_st2_action_extensions", "st2_action_id", "action_db", "CASCADE"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "poundcake_st2_rule_extensions",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("st2_rule_id", IdType(), nullable=False),
        sa.Column("cab_name", sa.String(255), nullable=False),
        sa.Column("alert_name_pattern", sa.String(1024), nullable=False),
        sa.Column("severity_filter", JSONType(), nullable=False),
        sa.Column("stop_on_first_failure", sa.Boolean(), nullable=False),
        sa.Column("steps", JSONType(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_poundcake_st2_rule_extensions"),
        sa.UniqueConstraint("st2_rule_id", name="uq_poundcake_st2_rule_extensions_st2_rule_id"),
        sa.UniqueConstraint("cab_name", name="uq_poundcake_st2_rule_extensions_cab_name"),
        _engine_link("poundcake_st2_rule_extensions", "st2_rule_id", "rule_db", "CASCADE"),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "poundcake_st2_execution_extensions",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("st2_execution_id", IdType()),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("alert_id", IdType()),
        sa.Column("cab_name", sa.String(255)),
        sa.Column("step_order", sa.Integer(), nullable=False),
        sa.Column("action_ref", sa.String(255)),
        sa.Column("expected_result", JSONType(), nullable=True),
        sa.Column("result_matched", sa.Boolean()),
        sa.Column("status", sa.String(32)),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_poundcake_st2_execution_extensions"),
        sa.UniqueConstraint(
            "st2_execution_id", name="uq_poundcake_st2_execution_extensions_st2_execution_id"
        ),
        _engine_link(
            "poundcake_st2_execution_extensions", "st2_execution_id", "execution_db", "SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["poundcake_alerts.id"],
            name="fk_poundcake_st2_execution_extensions_alert_id",
            ondelete="CASCADE",
        ),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index(
        "ix_poundcake_st2_execution_extensions_request_id",
        "poundcake_st2_execution_extensions",
        ["request_id"],
    )
    op.create_index(
        "ix_poundcake_st2_execution_extensions_alert_id",
        "poundcake_st2_execution_extensions",
        ["alert_id"],
    )
    op.create_table(
        "poundcake_st2_webhook_extensions",
        sa.Column("id", IdType(), nullable=False),
        sa.Column("st2_webhook_id", IdType(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("auth_mode", sa.String(32), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_poundcake_st2_webhook_extensions"),
        sa.UniqueConstraint(
            "st2_webhook_id", name="uq_poundcake_st2_webhook_extensions_st2_webhook_id"
        ),
        _engine_link("poundcake_st2_webhook_extensions", "st2_webhook_id", "webhook_db", "CASCADE"),
        **MYSQL_TABLE_OPTIONS,
    )


def downgrade() -> None:
    for table in (
        "poundcake_st2_webhook_extensions",
        "poundcake_st2_execution_extensions",
        "poundcake_st2_rule_extensions",
        "poundcake_st2_action_extensions",
        "poundcake_alerts",
        "poundcake_api_calls",
    ):
        op.drop_table(table)
