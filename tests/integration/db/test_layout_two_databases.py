"""Two databases, ``stackstorm`` and ``poundcake``, on one server (install steps 2, 3, 8, 9)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.integration.support.commands import command_environment, run_command
from tests.integration.support.layouts import (
    ENV_SEPARATE,
    ST2_CONF_SEPARATE,
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
    directory = tmp_path_factory.mktemp("two")
    yield build_layout(
        "two", directory, ST2_CONF_SEPARATE, ENV_SEPARATE, ("poundcake", "stackstorm")
    )
    teardown_layout()


@pytest.fixture(scope="module")
def rows(layout: Layout) -> SampleRows:
    sample = insert_engine_rows(layout.engine_engine())
    insert_poundcake_rows(layout.poundcake_engine(), sample)
    return sample


def test_each_database_holds_its_own_tables(layout: Layout) -> None:
    engine_tables = {
        row[0]
        for row in mysql(
            "-ustackstorm", "-pstackstorm_password", "stackstorm", "-e", "SHOW TABLES;"
        )[1:]
    }
    for name in (
        "action_db",
        "execution_db",
        "liveaction_db",
        "rule_db",
        "trigger_db",
        "webhook_db",
    ):
        assert name in engine_tables
    assert not any(t.startswith("poundcake_") for t in engine_tables)
    ours = {
        row[0] for row in mysql("-upoundcake", "-ppoundcake", "poundcake", "-e", "SHOW TABLES;")[1:]
    }
    assert {"poundcake_api_calls", "poundcake_alerts"} <= ours
    assert not any(t.endswith("_db") for t in ours)


def test_second_runs_change_nothing(layout: Layout) -> None:
    env = command_environment(layout.directory, ST2_CONFIG_PATH=str(layout.st2_conf))
    for command in (("st2-setup-db",), ("poundcake", "db", "init")):
        result = run_command(command[0], *command[1:], env=env, cwd=layout.directory)
        assert result.returncode == 0, result.stderr
        assert "nothing to do" in result.stdout


def test_seed_cross_database_join(rows: SampleRows) -> None:
    result = mysql(
        "-upoundcake",
        "-ppoundcake",
        "-e",
        """
SELECT
    p.request_id,
    s.action as st2_action,
    s.status
FROM poundcake.poundcake_st2_execution_extensions p
JOIN stackstorm.execution_db s ON p.st2_execution_id = s.id;
""",
    )
    assert result == [
        ["request_id", "st2_action", "status"],
        [rows.request_id, "linux.restart_service", "succeeded"],
    ]


def test_seed_foreign_key_query_sees_cross_database_keys(rows: SampleRows) -> None:
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
    found = [dict(zip(keys[0], row, strict=True)) for row in keys[1:]]
    assert [(k["TABLE_NAME"], k["REFERENCED_TABLE_SCHEMA"]) for k in found] == [
        ("poundcake_st2_execution_extensions", "stackstorm")
    ]


def test_seed_troubleshooting_queries(rows: SampleRows) -> None:
    one = mysql(
        "-upoundcake", "-ppoundcake", "-e", "\nSELECT * FROM stackstorm.action_db LIMIT 1;\n"
    )
    assert "name" in one[0]
    assert len(one) == 2
    count = mysql(
        "-ustackstorm",
        "-pstackstorm_password",
        "stackstorm",
        "-e",
        "\nSELECT COUNT(*) FROM action_db;\n",
    )
    assert count == [["COUNT(*)"], ["1"]]
    sizes = mysql(
        "-upoundcake",
        "-ppoundcake",
        "-e",
        """
SELECT
    table_schema AS 'Database',
    SUM(data_length + index_length) / 1024 / 1024 AS 'Size (MB)'
FROM information_schema.tables
WHERE table_schema IN ('poundcake', 'stackstorm')
GROUP BY table_schema;
""",
    )
    assert sorted(row[0] for row in sizes[1:]) == ["poundcake", "stackstorm"]


def test_engine_deletes_reach_across_databases(rows: SampleRows, layout: Layout) -> None:
    with layout.engine_engine().begin() as connection:
        connection.execute(
            sa.text("DELETE FROM webhook_db WHERE id = :id"), {"id": rows.webhook_id}
        )
        connection.execute(
            sa.text("DELETE FROM execution_db WHERE id = :id"), {"id": rows.execution_id}
        )
    webhooks = mysql(
        "-upoundcake",
        "-ppoundcake",
        "poundcake",
        "-e",
        "SELECT COUNT(*) FROM poundcake_st2_webhook_extensions",
    )
    assert webhooks[1] == ["0"]
    audit = mysql(
        "-upoundcake",
        "-ppoundcake",
        "poundcake",
        "-e",
        "SELECT st2_execution_id IS NULL, request_id FROM poundcake_st2_execution_extensions",
    )
    assert audit[1] == ["1", rows.request_id]


def test_an_orphan_extension_row_is_refused(rows: SampleRows, layout: Layout) -> None:
    with pytest.raises(sa.exc.IntegrityError), layout.poundcake_engine().begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO poundcake_st2_action_extensions (id, st2_action_id, action_type, "
                "expected_result_schema, parameter_templates, is_active, created_at, updated_at) "
                "VALUES ('0123456789abcdef01234567', 'ffffffffffffffffffffffff', 'x', '{}', '{}', "
                "1, NOW(6), NOW(6))"
            )
        )
