"""The engine's table names, StackStorm style, and how a ``table_prefix`` is applied to them."""

from __future__ import annotations

import re
from functools import lru_cache

ENGINE_TABLE_NAMES: tuple[str, ...] = (
    "action_alias_db",
    "action_db",
    "api_key_db",
    "config_db",
    "config_schema_db",
    "execution_db",
    "execution_output_db",
    "group_to_role_mapping_db",
    "key_value_pair_db",
    "liveaction_db",
    "notifier_pending_db",
    "permission_grant_db",
    "pack_db",
    "policy_db",
    "policy_type_db",
    "role_db",
    "rule_db",
    "rule_enforcement_db",
    "runner_type_db",
    "sensor_lease_db",
    "sensor_type_db",
    "task_execution_db",
    "timer_schedule_db",
    "token_db",
    "trigger_db",
    "trigger_instance_db",
    "trigger_type_db",
    "user_db",
    "user_role_assignment_db",
    "webhook_db",
    "workflow_action_db",
    "workflow_context_db",
    "workflow_execution_db",
)

# The engine tables PoundCake's extension tables point at; `poundcake db init` needs them.
LINKED_ENGINE_TABLES: tuple[str, ...] = ("action_db", "execution_db", "rule_db", "webhook_db")

_ENGINE_TABLE_PATTERN = re.compile(
    r"\b(" + "|".join(sorted(ENGINE_TABLE_NAMES, key=len, reverse=True)) + r")\b"
)


def engine_version_table(prefix: str) -> str:
    """Return the name of the table that records the engine schema's migration revision."""
    return f"{prefix}alembic_version"


POUNDCAKE_VERSION_TABLE = "poundcake_alembic_version"


@lru_cache(maxsize=8192)
def add_table_prefix(statement: str, prefix: str) -> str:
    """Return ``statement`` with every engine table name carrying ``prefix``.

    SQLAlchemy compiles each statement once and reuses the string, so the cache makes this a
    dictionary lookup on the hot path.
    """
    return _ENGINE_TABLE_PATTERN.sub(lambda match: prefix + match.group(1), statement)
