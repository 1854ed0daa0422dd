"""Multi-row INSERTs rendered with shared values escaped once (``db/multirow.py``) on MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from poundcake.db.engine import make_engine
from poundcake.db.multirow import ROWS_PER_STATEMENT, insert_rows
from poundcake.db.types import JSONType, UTCDateTime
from tests.integration.support.mariadb import ADMIN_HOST, ADMIN_PORT

METADATA = sa.MetaData()
ROWS = sa.Table(
    "poundcake_multirow_rows",
    METADATA,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("document", JSONType()),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("attempts", sa.Integer, default=0, nullable=False),
    mysql_charset="utf8mb4",
)
# Engine table names in the values: a table_prefix must not rewrite them.
AWKWARD = "it's 100% \\ \"action_db\" FROM rule_db %s %(x)s \U0001f525 ' OR 1=1 -- "


@pytest.fixture
def db_engine(scratch_database: str) -> sa.Engine:
    url = sa.URL.create(
        "mysql+pymysql",
        username="root",
        host=ADMIN_HOST,
        port=ADMIN_PORT,
        database=scratch_database,
        query={"charset": "utf8mb4"},
    )
    engine = make_engine(url, table_prefix="st2_")
    METADATA.create_all(engine)
    return engine


def test_rows_and_shared_values_are_stored_exactly_and_ids_returned(db_engine: sa.Engine) -> None:
    when = datetime(2026, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    rows = [
        {"name": f"{AWKWARD}{n}", "document": {AWKWARD: [n, None, AWKWARD]}}
        for n in range(ROWS_PER_STATEMENT * 2 + 3)
    ]
    with db_engine.begin() as connection:
        returned = insert_rows(
            connection,
            sa.insert(ROWS).returning(ROWS.c.id),
            rows,
            {"request_id": AWKWARD[:64], "received_at": when},
        )
    with db_engine.connect() as connection:
        stored = connection.execute(sa.select(ROWS).order_by(ROWS.c.id)).all()
    assert [row[0] for row in returned] == [row.id for row in stored]
    assert [(row.name, row.document) for row in stored] == [
        (row["name"], row["document"]) for row in rows
    ]
    assert {(row.request_id, row.received_at, row.attempts) for row in stored} == {
        (AWKWARD[:64], when, 0)
    }


def test_engine_tables_are_refused(db_engine: sa.Engine) -> None:
    engine_table = sa.Table("action_db", sa.MetaData(), sa.Column("id", sa.String(24)))
    with db_engine.connect() as connection, pytest.raises(ValueError, match="own tables"):
        insert_rows(connection, sa.insert(engine_table), [{"id": "x"}], {})
