"""One database, no prefix: the layout the install guide's query examples are written for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.support.commands import command_environment, run_command
from tests.integration.support.layouts import (
    ENV_SHARED,
    ST2_CONF_SHARED_PLAIN,
    Layout,
    SampleRows,
    build_layout,
    insert_engine_rows,
    insert_poundcake_rows,
    mysql,
    teardown_layout,
)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    directory = tmp_path_factory.mktemp("single")
    yield build_layout("single", directory, ST2_CONF_SHARED_PLAIN, ENV_SHARED, ("poundcake",))
    teardown_layout()


@pytest.fixture(scope="module")
def rows(layout: Layout) -> SampleRows:
    sample = insert_engine_rows(layout.engine_engine())
    insert_poundcake_rows(layout.poundcake_engine(), sample)
    return sample


def test_setup_reports_what_it_created(layout: Layout) -> None:
    assert "Engine schema created at revision " in layout.setup_outputs[0]
    assert "PoundCake schema created at revision " in layout.setup_outputs[1]


def test_second_runs_change_nothing_and_say_so(layout: Layout) -> None:
    before = mysql("-upoundcake", "-ppoundcake", "poundcake", "-e", "SHOW TABLES;")
    env = command_environment(layout.directory, ST2_CONFIG_PATH=str(layout.st2_conf))
    again = run_command("st2-setup-db", env=env, cwd=layout.directory)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    again = run_command("poundcake", "db", "init", env=env, cwd=layout.directory)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    current = run_command("poundcake", "db", "current", env=env, cwd=layout.directory)
    assert current.returncode == 0, current.stderr
    lines = current.stdout.splitlines()
    assert lines[0].startswith("engine: ") and "(head)" in lines[0]
    assert lines[1].startswith("poundcake: ") and "(head)" in lines[1]
    assert mysql("-upoundcake", "-ppoundcake", "poundcake", "-e", "SHOW TABLES;") == before


def test_show_tables_lists_engine_and_poundcake_tables(layout: Layout) -> None:
    tables = {
        row[0] for row in mysql("-upoundcake", "-ppoundcake", "poundcake", "-e", "SHOW TABLES;")[1:]
    }
    for name in (
        "action_db",
        "execution_db",
        "liveaction_db",
        "rule_db",
        "trigger_db",
        "webhook_db",
    ):
        assert name in tables
    for name in ("poundcake_api_calls", "poundcake_alerts", "poundcake_st2_action_extensions"):
        assert name in tables


def test_seed_action_join(rows: SampleRows) -> None:
    result = mysql(
        "-upoundcake",
        "-ppoundcake",
        "poundcake",
        "-e",
        """
SELECT
    a.name,
    a.pack,
    ext.action_type,
    ext.is_active
FROM action_db a
LEFT JOIN poundcake_st2_action_extensions ext ON a.id = ext.st2_action_id;
""",
    )
    assert result[0] == ["name", "pack", "action_type", "is_active"]
    assert ["restart_service", "linux", "remediation", "1"] in result[1:]


def test_seed_execution_metrics(rows: SampleRows) -> None:
    result = mysql(
        "-upoundcake",
        "-ppoundcake",
        "poundcake",
        "-e",
        """
SELECT
    DATE(start_timestamp) as date,
    COUNT(*) as execution_count,
    SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) as success,
    SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) as failed
FROM execution_db
WHERE start_timestamp >= DATE_SUB(NOW(), INTERVAL 7 DAY)
GROUP BY DATE(start_timestamp)
ORDER BY date DESC;
""",
    )
    assert result[0] == ["date", "execution_count", "success", "failed"]
    assert [row[1:] for row in result[1:]] == [["1", "1", "0"]]


def test_seed_extension_tables_and_foreign_keys(rows: SampleRows) -> None:
    shown = mysql(
        "-upoundcake", "-ppoundcake", "poundcake", "-e", "\nSHOW TABLES LIKE 'poundcake_st2_%';\n"
    )
    assert sorted(row[0] for row in shown[1:]) == [
        "poundcake_st2_action_extensions",
        "poundcake_st2_execution_extensions",
        "poundcake_st2_rule_extensions",
        "poundcake_st2_webhook_extensions",
    ]
    keys = mysql(
        "-upoundcake",
        "-ppoundcake",
        "poundcake",
        "-e",
        """
SELECT * FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = 'poundcake'
AND REFERENCED_TABLE_NAME = 'execution_db';
""",
    )
    header = keys[0]
    found = [dict(zip(header, row, strict=True)) for row in keys[1:]]
    assert [(k["TABLE_NAME"], k["COLUMN_NAME"], k["REFERENCED_COLUMN_NAME"]) for k in found] == [
        ("poundcake_st2_execution_extensions", "st2_execution_id", "id")
    ]


def test_seed_index_statements_run_as_written(rows: SampleRows, layout: Layout) -> None:
    mysql(
        "-upoundcake",
        "-ppoundcake",
        "-e",
        """
-- Add indexes for common ST2 + PoundCake queries
USE poundcake;

-- Index on execution_db for our extension joins
CREATE INDEX idx_execution_id ON execution_db(id);
CREATE INDEX idx_execution_timestamp ON execution_db(start_timestamp);

-- Index on our extension table
CREATE INDEX idx_ext_request_id ON poundcake_st2_execution_extensions(request_id);
CREATE INDEX idx_ext_alert_id ON poundcake_st2_execution_extensions(alert_id);
""",
    )
    env = command_environment(layout.directory, ST2_CONFIG_PATH=str(layout.st2_conf))
    again = run_command("poundcake", "db", "init", env=env, cwd=layout.directory)
    assert again.returncode == 0
    assert "nothing to do" in again.stdout


def test_deleting_engine_rows_cascades_or_keeps_the_audit(rows: SampleRows, layout: Layout) -> None:
    engine = layout.engine_engine()
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM action_db WHERE id = :id"), {"id": rows.action_id})
        connection.execute(
            sa.text("DELETE FROM execution_db WHERE id = :id"), {"id": rows.execution_id}
        )
    actions = mysql(
        "-upoundcake",
        "-ppoundcake",
        "poundcake",
        "-e",
        "SELECT COUNT(*) FROM poundcake_st2_action_extensions",
    )
    assert actions[1] == ["0"]
    audit = mysql(
        "-upoundcake",
        "-ppoundcake",
        "poundcake",
        "-e",
        "SELECT st2_execution_id, request_id, result_matched "
        "FROM poundcake_st2_execution_extensions",
    )
    assert audit[1] == ["NULL", rows.request_id, "1"]


def test_missing_engine_tables_stop_poundcake_db_init(
    tmp_path: Path, scratch_database: str
) -> None:
    env = command_environment(
        tmp_path,
        DATABASE_URL=f"mysql+pymysql://root@127.0.0.1:3306/{scratch_database}",
    )
    result = run_command("poundcake", "db", "init", env=env, cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "engine tables" in lines[0]
    assert "action_db" in lines[0]
    assert "st2-setup-db" in lines[0]
