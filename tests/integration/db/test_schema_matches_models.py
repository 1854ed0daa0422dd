"""The migrations create exactly what the models declare, on SQLite and on MariaDB, and
upgrade a database that holds rows without losing them."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

import poundcake.engine.models
import poundcake.remediation.models
from poundcake.config import DatabaseTarget, PoundCakeConfig, Settings, St2Config, load_st2_config
from poundcake.db.base import ENGINE_SCHEMA, Base
from poundcake.db.engine import make_engine
from poundcake.db.migrate import MIGRATIONS, setup_engine_schema, setup_poundcake_schema
from poundcake.db.naming import ENGINE_TABLE_NAMES, POUNDCAKE_VERSION_TABLE

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


def shared_config(st2: St2Config) -> PoundCakeConfig:
    """PoundCake's tables in the engine's database."""
    target = st2.database
    return PoundCakeConfig(
        settings=Settings(_env_file=None),
        database=DatabaseTarget(url=target.url, setting="test"),
        engine_database=target,
    )


def build(st2: St2Config) -> sa.Engine:
    setup_engine_schema(st2)
    setup_poundcake_schema(shared_config(st2))
    return make_engine(st2.database.url)


def mariadb_st2(tmp_path: Path, database: str) -> St2Config:
    conf = tmp_path / "st2.conf"
    conf.write_text(
        f"[database]\nbackend = mysql\nhost = 127.0.0.1\nusername = root\ndb_name = {database}\n"
    )
    return load_st2_config(conf)


def test_sqlite_schema_matches_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POUNDCAKE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ST2_CONFIG_PATH", raising=False)
    conf = tmp_path / "st2.conf"
    conf.write_text(f"[database]\nbackend = sqlite\ndb_name = {tmp_path / 'x.sqlite3'}\n")
    assert differences(build(load_st2_config(conf))) == []


def test_mariadb_schema_matches_models(tmp_path: Path, scratch_database: str) -> None:
    engine = build(mariadb_st2(tmp_path, scratch_database))
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
        # mysqldump writes a FLOAT with six significant digits: a backup would not restore it.
        floats = connection.execute(
            sa.text(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = :schema AND DATA_TYPE = 'float'"
            ),
            {"schema": scratch_database},
        ).all()
    assert set(charsets) == {"utf8mb4_unicode_ci"}
    assert set(columns) == {"utf8mb4"}
    assert precision == "datetime(6)"
    assert floats == []
    for table, column in (
        ("execution_db", "start_timestamp"),
        ("poundcake_st2_execution_extensions", "request_id"),
        ("poundcake_st2_execution_extensions", "alert_id"),
    ):
        assert (table, column) in indexed
    tables = {row[0] for row in indexed}
    assert set(ENGINE_TABLE_NAMES) <= tables


DURATION = 27.612345678901234


def as_float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


def test_upgrade_keeps_stored_durations_and_stores_new_ones_whole(
    tmp_path: Path, scratch_database: str
) -> None:
    st2 = mariadb_st2(tmp_path, scratch_database)
    config = shared_config(st2)
    engine = build(st2)
    alembic = Config()
    alembic.set_main_option("script_location", str(MIGRATIONS / "poundcake"))
    alembic.attributes["version_table"] = POUNDCAKE_VERSION_TABLE

    def column_type() -> str:
        with engine.connect() as connection:
            return str(
                connection.execute(
                    sa.text(
                        "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                        ":schema AND TABLE_NAME = 'poundcake_api_calls' "
                        "AND COLUMN_NAME = 'duration_ms'"
                    ),
                    {"schema": scratch_database},
                ).scalar_one()
            )

    def record(request_id: str) -> None:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO poundcake_api_calls (request_id, method, path, duration_ms, "
                    "received_at) VALUES (:id, 'POST', '/api/v1/alerts', :ms, UTC_TIMESTAMP(6))"
                ),
                {"id": request_id, "ms": DURATION},
            )

    def durations() -> dict[str, float]:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT request_id, duration_ms FROM poundcake_api_calls")
            )
            return {str(request_id): float(ms) for request_id, ms in rows}

    try:
        with engine.begin() as connection:
            alembic.attributes["connection"] = connection
            command.downgrade(alembic, "0006_poundcake")
        assert column_type() == "float"
        record("before")
        assert setup_poundcake_schema(config).changed  # what ``poundcake db init`` runs
        assert column_type() == "double"
        record("after")
        assert durations() == {"before": as_float32(DURATION), "after": DURATION}
        assert as_float32(DURATION) != DURATION
    finally:
        engine.dispose()
