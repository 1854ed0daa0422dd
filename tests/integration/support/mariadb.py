"""The real MariaDB server as the tests' administrator: its address, statements run as root, and
the uniquely named fixture databases tests create and drop (never one the tests did not make)."""

from __future__ import annotations

import os

import pymysql
import pytest

ADMIN_HOST = os.environ.get("POUNDCAKE_TEST_MYSQL_HOST", "127.0.0.1")
ADMIN_PORT = int(os.environ.get("POUNDCAKE_TEST_MYSQL_PORT", "3306"))
ADMIN_USER = os.environ.get("POUNDCAKE_TEST_MYSQL_USER", "root")
ADMIN_PASSWORD = os.environ.get("POUNDCAKE_TEST_MYSQL_PASSWORD", "")
FIXTURE_COMMENT = "poundcake test fixture"


def admin_connection(database: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=ADMIN_HOST,
        port=ADMIN_PORT,
        user=ADMIN_USER,
        password=ADMIN_PASSWORD,
        database=database,
        autocommit=True,
        charset="utf8mb4",
    )


def admin_sql(*statements: str, database: str | None = None) -> list[tuple[object, ...]]:
    """Run statements as the admin user; return the rows of the last one."""
    rows: list[tuple[object, ...]] = []
    with admin_connection(database) as connection, connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
            rows = list(cursor.fetchall())
    return rows


def drop_fixture_database(name: str) -> None:
    """Drop ``name`` if it is absent or was made by these tests; refuse to touch anything else."""
    rows = admin_sql(
        f"SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'"
    )
    if rows and rows[0][0] != FIXTURE_COMMENT:
        pytest.fail(
            f"database {name!r} exists and was not created by the tests; "
            "refusing to drop it (rename it or run the tests on another server)"
        )
    admin_sql(f"DROP DATABASE IF EXISTS `{name}`")


def create_fixture_database(name: str) -> None:
    drop_fixture_database(name)
    admin_sql(
        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci "
        f"COMMENT '{FIXTURE_COMMENT}'"
    )
