from __future__ import annotations

from poundcake.db.base import ENGINE_SCHEMA, Base
from poundcake.db.naming import ENGINE_TABLE_NAMES, add_table_prefix


def test_engine_table_list_matches_the_models() -> None:
    import poundcake.engine.models  # noqa: F401 - registers the engine tables

    declared = {t.name for t in Base.metadata.tables.values() if t.schema == ENGINE_SCHEMA}
    assert declared == set(ENGINE_TABLE_NAMES)


def test_seed_table_names_are_kept() -> None:
    for name in (
        "action_db",
        "execution_db",
        "liveaction_db",
        "rule_db",
        "trigger_db",
        "webhook_db",
    ):
        assert name in ENGINE_TABLE_NAMES


def test_prefix_is_added_to_engine_tables_only() -> None:
    statement = (
        "SELECT liveaction_db.id, execution_db.action FROM execution_db "
        "JOIN stackstorm.execution_output_db ON 1 "
        "JOIN poundcake_st2_execution_extensions p ON p.st2_execution_id = execution_db.id "
        "WHERE ix_execution_db_status = `action_db`"
    )
    assert add_table_prefix(statement, "st2_") == (
        "SELECT st2_liveaction_db.id, st2_execution_db.action FROM st2_execution_db "
        "JOIN stackstorm.st2_execution_output_db ON 1 "
        "JOIN poundcake_st2_execution_extensions p ON p.st2_execution_id = st2_execution_db.id "
        "WHERE ix_execution_db_status = `st2_action_db`"
    )
