"""``poundcake report``: database and table sizes and the last 7 days of executions.

On MariaDB these are the install guide's own queries (Monitor Database Size, View Execution
Metrics), pointed at the configured databases and table prefix. On the embedded SQLite file the
same figures come from SQLite's page counts and ``dbstat``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from poundcake.config import PoundCakeConfig
from poundcake.db.engine import check_connection, make_engine
from poundcake.ops.backup import with_credentials

DATABASE_SIZES = """
SELECT
    table_schema AS 'Database',
    SUM(data_length + index_length) / 1024 / 1024 AS 'Size (MB)'
FROM information_schema.tables
WHERE table_schema IN :schemas
GROUP BY table_schema
"""

TABLE_SIZES = """
SELECT
    table_name,
    ROUND(((data_length + index_length) / 1024 / 1024), 2) AS 'Size (MB)'
FROM information_schema.TABLES
WHERE table_schema = :schema
ORDER BY (data_length + index_length) DESC
"""

EXECUTION_METRICS = """
SELECT
    DATE(start_timestamp) as date,
    COUNT(*) as execution_count,
    SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) as success,
    SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) as failed
FROM {execution_table}
WHERE start_timestamp >= {seven_days_ago}
GROUP BY DATE(start_timestamp)
ORDER BY date DESC
"""

SQLITE_TABLE_SIZES = """
SELECT name, ROUND(SUM(pgsize) / 1024.0 / 1024.0, 2) FROM dbstat
WHERE name NOT LIKE 'sqlite_%' GROUP BY name ORDER BY SUM(pgsize) DESC
"""


@dataclass(frozen=True)
class DatabaseSize:
    """One database and its size in MiB (data plus indexes)."""

    database: str
    size_mb: float


@dataclass(frozen=True)
class TableSize:
    """One table and its size in MiB."""

    database: str
    table: str
    size_mb: float


@dataclass(frozen=True)
class DailyExecutions:
    """Executions started on one day, and how many succeeded or failed."""

    date: str
    execution_count: int
    success: int
    failed: int


@dataclass
class Report:
    """Everything ``poundcake report`` shows."""

    databases: list[DatabaseSize] = field(default_factory=list)
    tables: list[TableSize] = field(default_factory=list)
    executions: list[DailyExecutions] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-able data."""
        return asdict(self)


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    return round(float(Decimal(value)), 4)


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _executions(connection: sa.Connection, table: str, since: str) -> list[DailyExecutions]:
    query = EXECUTION_METRICS.format(execution_table=table, seven_days_ago=since)
    return [
        DailyExecutions(_day(row[0]), int(row[1]), int(row[2] or 0), int(row[3] or 0))
        for row in connection.execute(sa.text(query))
    ]


def _mariadb_report(config: PoundCakeConfig, admin_url: URL | None) -> Report:
    target = with_credentials(config.database, admin_url)
    db_engine = make_engine(target.url, pool_size=1)
    schemas = [config.database.database]
    if config.engine_schema is not None:
        schemas.append(config.engine_schema)
    execution_table = f"`{config.engine_database.table_prefix}execution_db`"
    if config.engine_schema is not None:
        execution_table = f"`{config.engine_schema}`.{execution_table}"
    report = Report()
    try:
        check_connection(db_engine, target)
        with db_engine.connect() as connection:
            sizes = sa.text(DATABASE_SIZES).bindparams(sa.bindparam("schemas", expanding=True))
            for row in connection.execute(sizes, {"schemas": schemas}):
                report.databases.append(DatabaseSize(str(row[0]), _number(row[1])))
            for schema in schemas:
                for row in connection.execute(sa.text(TABLE_SIZES), {"schema": schema}):
                    report.tables.append(TableSize(schema, str(row[0]), _number(row[1])))
            seven_days_ago = "DATE_SUB(UTC_TIMESTAMP(), INTERVAL 7 DAY)"
            report.executions = _executions(connection, execution_table, seven_days_ago)
    finally:
        db_engine.dispose()
    return report


def _sqlite_report(config: PoundCakeConfig) -> Report:
    target = config.database
    db_engine = make_engine(target.url, pool_size=1)
    report = Report()
    try:
        check_connection(db_engine, target)
        with db_engine.connect() as connection:
            page_size = connection.execute(sa.text("PRAGMA page_size")).scalar() or 0
            pages = connection.execute(sa.text("PRAGMA page_count")).scalar() or 0
            report.databases.append(
                DatabaseSize(target.database, round(page_size * pages / 1024 / 1024, 4))
            )
            for row in connection.execute(sa.text(SQLITE_TABLE_SIZES)):
                report.tables.append(TableSize(target.database, str(row[0]), _number(row[1])))
            execution_table = f'"{config.engine_database.table_prefix}execution_db"'
            since = "datetime('now', '-7 days')"
            report.executions = _executions(connection, execution_table, since)
    finally:
        db_engine.dispose()
    return report


def build_report(config: PoundCakeConfig, *, admin_url: URL | None = None) -> Report:
    """Measure the configured databases and count the last 7 days of executions."""
    if config.database.backend == "sqlite":
        return _sqlite_report(config)
    return _mariadb_report(config, admin_url)
