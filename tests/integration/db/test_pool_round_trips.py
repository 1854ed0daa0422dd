"""The pool's round trips on MariaDB: no ROLLBACK after a committed transaction, a real one when a
transaction is still open, and pings only where the engine asks for them.

MariaDB counts each session's statements (``SHOW SESSION STATUS``): ``Com_rollback`` read on the
pooled connection itself says whether the pool sent a ROLLBACK when it took it back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from poundcake.db.engine import make_engine
from tests.integration.support.mariadb import ADMIN_HOST, ADMIN_PORT, admin_sql


@pytest.fixture
def url(scratch_database: str) -> sa.URL:
    admin_sql(
        "CREATE TABLE rows_to_lock (id INT PRIMARY KEY) ENGINE=InnoDB",
        "INSERT INTO rows_to_lock VALUES (1)",
        database=scratch_database,
    )
    return sa.URL.create(
        "mysql+pymysql",
        username="root",
        host=ADMIN_HOST,
        port=ADMIN_PORT,
        database=scratch_database,
    )


@pytest.fixture
def db_engine(url: sa.URL) -> Iterator[sa.Engine]:
    engine = make_engine(url, pool_size=1)
    yield engine
    engine.dispose()


def rollbacks(connection: sa.Connection) -> int:
    row = connection.exec_driver_sql("SHOW SESSION STATUS LIKE 'Com_rollback'").one()
    return int(row[1])


def connection_id(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        found = connection.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one()
        connection.commit()
    return int(found)


def test_a_committed_connection_comes_back_without_a_rollback(db_engine: sa.Engine) -> None:
    with db_engine.connect() as connection:
        before = rollbacks(connection)
        connection.commit()
    for _ in range(3):
        with db_engine.begin() as connection:
            connection.exec_driver_sql("UPDATE rows_to_lock SET id = 1")
    with db_engine.connect() as connection:
        assert rollbacks(connection) == before
        connection.commit()


@pytest.mark.parametrize(
    "statement", ["SELECT id FROM rows_to_lock FOR UPDATE", "UPDATE rows_to_lock SET id = 1"]
)
def test_a_connection_returned_in_a_transaction_is_rolled_back(
    db_engine: sa.Engine, url: sa.URL, statement: str
) -> None:
    with db_engine.connect() as connection:
        before = rollbacks(connection)
        connection.commit()
    raw = db_engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute(statement)
    cursor.fetchall()
    raw.close()

    other = make_engine(url, pool_size=1)
    try:
        with other.connect() as connection:
            connection.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
            locked = connection.exec_driver_sql("SELECT id FROM rows_to_lock FOR UPDATE")
            assert locked.scalars().all() == [1]
            connection.rollback()
    finally:
        other.dispose()
    with db_engine.connect() as connection:
        assert rollbacks(connection) == before + 1
        connection.commit()


def test_a_connection_in_recent_use_is_not_pinged(url: sa.URL) -> None:
    """Its first statement meets the dropped connection: a database error, not a ping."""
    engine = make_engine(url, pool_size=1, ping_after_idle=3600)
    try:
        admin_sql(f"KILL {connection_id(engine)}")
        with pytest.raises(sa.exc.OperationalError), engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("ping_after_idle", [None, 0.0])
def test_a_pinged_connection_the_server_dropped_is_replaced(
    url: sa.URL, ping_after_idle: float | None
) -> None:
    engine = make_engine(url, pool_size=1, ping_after_idle=ping_after_idle)
    try:
        first = connection_id(engine)
        admin_sql(f"KILL {first}")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT 1").scalar_one() == 1
            connection.commit()
        assert connection_id(engine) != first
    finally:
        engine.dispose()
