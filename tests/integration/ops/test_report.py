"""``poundcake report`` agrees with the install guide's own monitoring queries, run by ``mysql``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.config import Settings, load_poundcake_config
from poundcake.db.engine import make_poundcake_engine
from poundcake.engine.models import ExecutionDB
from poundcake.ids import new_id
from tests.integration.support.commands import command_environment, run_command
from tests.integration.support.layouts import mysql
from tests.integration.support.mariadb import ADMIN_HOST, ADMIN_PORT
from tests.integration.support.ops_layout import OpsLayout, build_ops_layout, drop_ops_layout

GUIDE_DATABASE_SIZES = """
SELECT
    table_schema AS 'Database',
    SUM(data_length + index_length) / 1024 / 1024 AS 'Size (MB)'
FROM information_schema.tables
WHERE table_schema IN ('poundcake', 'stackstorm')
GROUP BY table_schema;
"""

GUIDE_TABLE_SIZES = """
SELECT
    table_name,
    ROUND(((data_length + index_length) / 1024 / 1024), 2) AS 'Size (MB)'
FROM information_schema.TABLES
WHERE table_schema = 'poundcake'
ORDER BY (data_length + index_length) DESC;
"""

GUIDE_EXECUTION_METRICS = """
SELECT
    DATE(start_timestamp) as date,
    COUNT(*) as execution_count,
    SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) as success,
    SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) as failed
FROM execution_db
WHERE start_timestamp >= DATE_SUB(NOW(), INTERVAL 7 DAY)
GROUP BY DATE(start_timestamp)
ORDER BY date DESC;
"""

# Hours ago -> status; 240 hours is outside the 7-day window.
EXECUTIONS = {
    1: "succeeded",
    2: "failed",
    3: "running",
    49: "succeeded",
    50: "failed",
    51: "failed",
    240: "succeeded",
}


def add_executions(engine: sa.Engine) -> list[tuple[str, int, int, int]]:
    """Insert :data:`EXECUTIONS`; return what the 7-day metrics should show, newest day first."""
    now = datetime.now(UTC)
    expected: dict[str, list[int]] = {}
    with Session(engine) as session:
        for hours, status in EXECUTIONS.items():
            started = now - timedelta(hours=hours)
            session.add(
                ExecutionDB(
                    id=new_id(),
                    action="core.local",
                    action_snapshot={"ref": "core.local"},
                    runner={"name": "local-shell-cmd"},
                    runner_type="local-shell-cmd",
                    status=status,
                    start_timestamp=started,
                    parameters={"cmd": "true"},
                    context={"user": "stanley"},
                )
            )
            if hours < 7 * 24:
                day = expected.setdefault(started.date().isoformat(), [0, 0, 0])
                day[0] += 1
                day[1] += status == "succeeded"
                day[2] += status == "failed"
        session.commit()
    return [(day, c[0], c[1], c[2]) for day, c in sorted(expected.items(), reverse=True)]


def guide_query(query: str, database: str, *names: tuple[str, str]) -> list[list[str]]:
    """Run one of the guide's queries with ``mysql``, its database names swapped for ours."""
    for seed_name, ours in names:
        query = query.replace(f"'{seed_name}'", f"'{ours}'")
    return mysql("-uroot", f"-h{ADMIN_HOST}", f"-P{ADMIN_PORT}", database, "-e", query)[1:]


def report(env: dict[str, str], directory: Path) -> dict[str, Any]:
    result = run_command("poundcake", "report", "--json", env=env, cwd=directory)
    assert result.returncode == 0, result.stdout + result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


@pytest.fixture(params=["single", "two"])
def layout(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpsLayout]:
    built = build_ops_layout(request.param, tmp_path, "", request.param == "two")
    try:
        yield built
    finally:
        drop_ops_layout(built)


def test_report_matches_the_guides_queries(layout: OpsLayout) -> None:
    engine = layout.engine()
    try:
        expected = add_executions(engine)
    finally:
        engine.dispose()
    found = report(layout.env, layout.directory)
    pc, st2 = layout.poundcake_database, layout.engine_database
    names = (("poundcake", pc), ("stackstorm", st2))

    sizes = guide_query(GUIDE_DATABASE_SIZES, pc, *names)
    assert {row[0] for row in sizes} == set(layout.databases)
    assert {d["database"]: d["size_mb"] for d in found["databases"]} == pytest.approx(
        {row[0]: float(row[1]) for row in sizes}, abs=1e-3
    )
    for database in layout.databases:
        tables = guide_query(GUIDE_TABLE_SIZES, database, ("poundcake", database))
        ours = [(t["table"], t["size_mb"]) for t in found["tables"] if t["database"] == database]
        assert sorted(ours) == sorted((row[0], float(row[1])) for row in tables)
    assert "poundcake_alerts" in {t["table"] for t in found["tables"] if t["database"] == pc}
    assert "execution_db" in {t["table"] for t in found["tables"] if t["database"] == st2}

    metrics = guide_query(GUIDE_EXECUTION_METRICS, st2)
    from_guide = [(row[0], int(row[1]), int(row[2]), int(row[3])) for row in metrics]
    ours = [
        (day["date"], day["execution_count"], day["success"], day["failed"])
        for day in found["executions"]
    ]
    assert ours == from_guide
    # insert_engine_rows added one succeeded execution a few seconds ago.
    counts = {day: [count, success, failed] for day, count, success, failed in expected}
    today = counts.setdefault(datetime.now(UTC).date().isoformat(), [0, 0, 0])
    today[0], today[1] = today[0] + 1, today[1] + 1
    assert ours == [(day, c[0], c[1], c[2]) for day, c in sorted(counts.items(), reverse=True)]

    table = run_command("poundcake", "report", env=layout.env, cwd=layout.directory)
    assert table.returncode == 0, table.stderr
    for heading in ("Size (MB)", "table_name", "execution_count", "success", "failed"):
        assert heading in table.stdout
    assert ours[0][0] in table.stdout


def test_report_on_the_embedded_sqlite_database(tmp_path: Path) -> None:
    env = command_environment(tmp_path)
    for command in (("st2-setup-db",), ("poundcake", "db", "init")):
        result = run_command(command[0], *command[1:], env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    config = load_poundcake_config(Settings(POUNDCAKE_DATA_DIR=tmp_path / "data"))
    engine = make_poundcake_engine(config, pool_size=1)
    try:
        expected = add_executions(engine)
    finally:
        engine.dispose()
    found = report(env, tmp_path)
    [database] = found["databases"]
    assert database["database"] == config.database.database
    assert database["size_mb"] > 0
    assert {"execution_db", "poundcake_alerts"} <= {t["table"] for t in found["tables"]}
    ours = [
        (day["date"], day["execution_count"], day["success"], day["failed"])
        for day in found["executions"]
    ]
    assert ours == expected
