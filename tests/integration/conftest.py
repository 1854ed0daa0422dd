"""Fixtures for tests against the real MariaDB server (helpers: ``support/mariadb.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pymysql
import pytest

from tests.integration.support.mariadb import (
    ADMIN_HOST,
    ADMIN_PORT,
    admin_sql,
    create_fixture_database,
    drop_fixture_database,
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
