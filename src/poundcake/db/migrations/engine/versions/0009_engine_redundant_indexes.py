"""Two indexes every write paid for and no query needs: each is the leading column of a
wider index that serves the same lookups.

``trigger_instance_db.status`` is served by ``(status, occurrence_time)`` (the rules engine's
claim and the ``status`` filter); ``rule_enforcement_db.trigger_instance_id`` by the unique
``(trigger_instance_id, rule_ref)``. A trigger instance's status changes once after its insert
and an enforcement is written per rule that matched, so each index cost a write per row on the
rules engine's hot path.

Revision ID: 0009_engine_indexes
Revises: 0008_engine_sensors
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0009_engine_indexes"
down_revision = "0008_engine_sensors"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_trigger_instance_db_status", "trigger_instance_db")
    op.drop_index("ix_rule_enforcement_db_trigger_instance_id", "rule_enforcement_db")


def downgrade() -> None:
    op.create_index(
        "ix_rule_enforcement_db_trigger_instance_id", "rule_enforcement_db", ["trigger_instance_id"]
    )
    op.create_index("ix_trigger_instance_db_status", "trigger_instance_db", ["status"])
