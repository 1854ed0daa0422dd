"""One shared database with ``table_prefix = st2_``: the seed's "shared database approach".

The queries are the install guide's with the documented prefixed table names (README,
"Queries in each layout").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.integration.support.commands import command_environment, run_command
from tests.integration.support.layouts import (
    ENV_SHARED,
    ST2_CONF_SHARED_PREFIXED,
    Layout,
    SampleRows,
    build_layout,
    insert_engine_rows,
    insert_poundcake_rows,
    mysql,
    teardown_layout,
)

POUNDCAKE = ("-upoundcake", "-ppoundcake", "poundcake", "-e")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    directory = tmp_path_factory.mktemp("prefixed")
    yield build_layout("prefixed", directory, ST2_CONF_SHARED_PREFIXED, ENV_SHARED, ("poundcake",))
    teardown_layout()


@pytest.fixture(scope="module")
def rows(layout: Layout) -> SampleRows:
    sample = insert_engine_rows(layout.engine_engine())
    insert_poundcake_rows(layout.poundcake_engine(), sample)
    return sample


def test_every_engine_table_carries_the_prefix(layout: Layout) -> None:
    tables = {row[0] for row in mysql(*POUNDCAKE, "SHOW TABLES;")[1:]}
    engine_tables = {t for t in tables if not t.startswith("poundcake_")}
    assert engine_tables, tables
    assert all(t.startswith("st2_") for t in engine_tables), engine_tables
    for name in (
        "action_db",
        "execution_db",
        "liveaction_db",
        "rule_db",
        "trigger_db",
        "webhook_db",
    ):
        assert f"st2_{name}" in tables
    assert "poundcake_api_calls" in tables
    assert "poundcake_alerts" in tables


def test_second_runs_change_nothing(layout: Layout) -> None:
    env = command_environment(layout.directory, ST2_CONFIG_PATH=str(layout.st2_conf))
    for command in (("st2-setup-db",), ("poundcake", "db", "init")):
        result = run_command(command[0], *command[1:], env=env, cwd=layout.directory)
        assert result.returncode == 0, result.stderr
        assert "nothing to do" in result.stdout


def test_prefixed_action_join_and_metrics(rows: SampleRows) -> None:
    joined = mysql(
        *POUNDCAKE,
        "SELECT a.name, a.pack, ext.action_type, ext.is_active FROM st2_action_db a "
        "LEFT JOIN poundcake_st2_action_extensions ext ON a.id = ext.st2_action_id;",
    )
    assert joined == [
        ["name", "pack", "action_type", "is_active"],
        ["restart_service", "linux", "remediation", "1"],
    ]
    metrics = mysql(
        *POUNDCAKE,
        "SELECT DATE(start_timestamp) as date, COUNT(*) as execution_count, "
        "SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) as success, "
        "SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) as failed FROM st2_execution_db "
        "WHERE start_timestamp >= DATE_SUB(NOW(), INTERVAL 7 DAY) "
        "GROUP BY DATE(start_timestamp) ORDER BY date DESC;",
    )
    assert [row[1:] for row in metrics[1:]] == [["1", "1", "0"]]


def test_prefixed_foreign_keys(rows: SampleRows) -> None:
    shown = mysql(*POUNDCAKE, "SHOW TABLES LIKE 'poundcake_st2_%';")
    assert len(shown) == 5
    keys = mysql(
        *POUNDCAKE,
        "SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME "
        "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = 'poundcake' "
        "AND REFERENCED_TABLE_NAME LIKE 'st2\\_%' ORDER BY TABLE_NAME;",
    )
    assert keys[1:] == [
        ["poundcake_st2_action_extensions", "st2_action_id", "poundcake", "st2_action_db"],
        ["poundcake_st2_execution_extensions", "st2_execution_id", "poundcake", "st2_execution_db"],
        ["poundcake_st2_rule_extensions", "st2_rule_id", "poundcake", "st2_rule_db"],
        ["poundcake_st2_webhook_extensions", "st2_webhook_id", "poundcake", "st2_webhook_db"],
    ]


def test_orm_reads_through_the_prefix(rows: SampleRows, layout: Layout) -> None:
    from sqlalchemy.orm import Session

    from poundcake.engine.models import ExecutionDB
    from poundcake.remediation.models import ExecutionExtension

    with Session(layout.poundcake_engine()) as session:
        joined = session.execute(
            sa.select(ExecutionExtension.request_id, ExecutionDB.action, ExecutionDB.result).join(
                ExecutionDB, ExecutionExtension.st2_execution_id == ExecutionDB.id
            )
        ).one()
    assert joined.request_id == rows.request_id
    assert joined.action == "linux.restart_service"
    assert joined.result == {"succeeded": True, "stdout": "ok ✓"}


def test_deleting_a_rule_removes_its_cab_extension(rows: SampleRows, layout: Layout) -> None:
    with layout.engine_engine().begin() as connection:
        connection.execute(sa.text("DELETE FROM rule_db WHERE id = :id"), {"id": rows.rule_id})
    remaining = mysql(*POUNDCAKE, "SELECT COUNT(*) FROM poundcake_st2_rule_extensions")
    assert remaining[1] == ["0"]
