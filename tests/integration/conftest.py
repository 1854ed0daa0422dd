"""Fixtures for tests against the real MariaDB server and the installed commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

ADMIN_HOST = os.environ.get("POUNDCAKE_TEST_MYSQL_HOST", "127.0.0.1")
ADMIN_PORT = int(os.environ.get("POUNDCAKE_TEST_MYSQL_PORT", "3306"))
ADMIN_USER = os.environ.get("POUNDCAKE_TEST_MYSQL_USER", "root")
ADMIN_PASSWORD = os.environ.get("POUNDCAKE_TEST_MYSQL_PASSWORD", "")
FIXTURE_COMMENT = "poundcake test fixture"
BIN = Path(sys.executable).parent


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


@pytest.fixture(scope="session", autouse=True)
def mariadb_is_up() -> None:
    try:
        admin_sql("SELECT 1")
    except pymysql.err.OperationalError as error:
        pytest.fail(f"MariaDB is not reachable at {ADMIN_HOST}:{ADMIN_PORT}: {error}")


@pytest.fixture
def scratch_database() -> Iterator[str]:
    """A fresh, uniquely named database, dropped afterwards."""
    name = f"pctest_{uuid.uuid4().hex[:12]}"
    create_fixture_database(name)
    try:
        yield name
    finally:
        drop_fixture_database(name)


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


def command_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A clean environment for our commands: no stray settings from the developer's shell."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TERM")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["POUNDCAKE_DATA_DIR"] = str(tmp_path / "data")
    env["COLUMNS"] = "300"
    env.update(variables)
    return env


def run_command(
    name: str, *args: str, env: dict[str, str], cwd: Path | None = None
) -> CommandResult:
    """Run one of our console scripts the way a user would."""
    executable = BIN / name
    if not executable.exists():
        found = shutil.which(name)
        assert found, f"{name} is not installed"
        executable = Path(found)
    completed = subprocess.run(
        [str(executable), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return CommandResult(completed.returncode, completed.stdout, completed.stderr)
