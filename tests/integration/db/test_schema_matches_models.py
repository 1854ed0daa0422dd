"""The migrations create exactly what the models declare, on SQLite and on MariaDB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import poundcake.engine.models
import poundcake.remediation.models
from poundcake.config import DatabaseTarget, PoundCakeConfig, Settings, St2Config, load_st2_config
from poundcake.db.base import ENGINE_SCHEMA, Base
from poundcake.db.engine import make_engine
from poundcake.db.migrate import setup_engine_schema, setup_poundcake_schema
from poundcake.db.naming import ENGINE_TABLE_NAMES

assert poundcake.engine.models


def flattened_metadata() -> sa.MetaData:
    """The models with the engine's placeholder schema mapped to the default schema."""
    flat = sa.MetaData()

    def referred(_table: Any, _to: Any, _constraint: Any, schema: str | None) -> Any:
        return sa.schema.BLANK_SCHEMA if schema == ENGINE_SCHEMA else schema

    for table in Base.metadata.sorted_tables:
        table.to_metadata(flat, schema=None, referred_schema_fn=referred)
    return flat


def differences(engine: sa.Engine) -> list[Any]:
    ignored = {"alembic_version", "poundcake_alembic_version"}
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": False,
                "include_name": lambda name, kind, _parent: (
                    not (kind == "table" and name in ignored)
                ),
            },
        )
        return list(compare_metadata(context, flattened_metadata()))


def build(st2: St2Config) -> sa.Engine:
    setup_engine_schema(st2)
    target = st2.database
    config = PoundCakeConfig(
        settings=Settings(_env_file=None),
        database=DatabaseTarget(url=target.url, setting="test"),
        engine_database=target,
    )
    setup_poundcake_schema(config)
    return make_engine(target.url)


def test_sqlite_schema_matches_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POUNDCAKE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ST2_CONFIG_PATH", raising=False)
    conf = tmp_path / "st2.conf"
    conf.write_text(f"[database]\nbackend = sqlite\ndb_name = {tmp_path / 'x.sqlite3'}\n")
    assert differences(build(load_st2_config(conf))) == []


def test_mariadb_schema_matches_models(tmp_path: Path, scratch_database: str) -> None:
    conf = tmp_path / "st2.conf"
    conf.write_text(
        "[database]\nbackend = mysql\nhost = 127.0.0.1\nusername = root\n"
        f"db_name = {scratch_database}\n"
    )
    engine = build(load_st2_config(conf))
    assert differences(engine) == []
    with engine.connect() as connection:
        charsets = (
            connection.execute(
                sa.text(
                    "SELECT DISTINCT TABLE_COLLATION FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = :schema"
                ),
                {"schema": scratch_database},
            )
            .scalars()
            .all()
        )
        columns = (
            connection.execute(
                sa.text(
                    "SELECT DISTINCT CHARACTER_SET_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = :schema AND CHARACTER_SET_NAME IS NOT NULL"
                ),
                {"schema": scratch_database},
            )
            .scalars()
            .all()
        )
        precision = connection.execute(
            sa.text(
                "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :schema "
                "AND TABLE_NAME = 'execution_db' AND COLUMN_NAME = 'start_timestamp'"
            ),
            {"schema": scratch_database},
        ).scalar_one()
        indexed = connection.execute(
            sa.text(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA = :schema AND SEQ_IN_INDEX = 1"
            ),
            {"schema": scratch_database},
        ).all()
    assert set(charsets) == {"utf8mb4_unicode_ci"}
    assert set(columns) == {"utf8mb4"}
    assert precision == "datetime(6)"
    for table, column in (
        ("execution_db", "start_timestamp"),
        ("poundcake_st2_execution_extensions", "request_id"),
        ("poundcake_st2_execution_extensions", "alert_id"),
    ):
        assert (table, column) in indexed
    tables = {row[0] for row in indexed}
    assert set(ENGINE_TABLE_NAMES) <= tables
