"""Create and migrate the two schemas: the engine's tables and PoundCake's.

Each has its own Alembic history and version table, so either side can be upgraded on its own,
in one database or two. Commands call :func:`setup_engine_schema` (``st2-setup-db``) and
:func:`setup_poundcake_schema` (``poundcake db init``); both are idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from poundcake.config import DatabaseTarget, PoundCakeConfig, St2Config
from poundcake.db.engine import (
    check_connection,
    describe_connection_error,
    is_unknown_database,
    make_engine,
    make_poundcake_engine,
    make_st2_engine,
)
from poundcake.db.naming import (
    LINKED_ENGINE_TABLES,
    POUNDCAKE_VERSION_TABLE,
    engine_version_table,
)
from poundcake.exceptions import DatabaseUnavailableError, SchemaError

logger = logging.getLogger(__name__)

Side = Literal["engine", "poundcake"]
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class SchemaStatus:
    """Which revision a schema is at, and which revision this code knows as newest."""

    side: Side
    where: str
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        """Tell whether the schema is at the newest revision."""
        return self.current == self.head


@dataclass(frozen=True)
class SetupResult:
    """What one setup command did."""

    before: SchemaStatus
    after: SchemaStatus
    created_database: str | None = None

    @property
    def changed(self) -> bool:
        """Tell whether anything was created or migrated."""
        return self.before.current != self.after.current or self.created_database is not None


def _alembic_config(side: Side, version_table: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / side))
    config.attributes["version_table"] = version_table
    return config


def _head(side: Side) -> str:
    head = ScriptDirectory.from_config(_alembic_config(side, "unused")).get_current_head()
    if head is None:
        raise SchemaError(f"no {side} migrations are installed")
    return head


def _current(connection: sa.Connection, version_table: str) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": version_table})
    return context.get_current_revision()


def _status(engine: Engine, side: Side, version_table: str, where: str) -> SchemaStatus:
    with engine.connect() as connection:
        current = _current(connection, version_table)
    head = _head(side)
    scripts = ScriptDirectory.from_config(_alembic_config(side, version_table))
    known = {script.revision for script in scripts.walk_revisions()}
    if current is not None and current not in known:
        raise SchemaError(
            f"the {side} schema in {where} is at revision {current!r}, which this version of "
            "PoundCake does not know (was it migrated by a newer release?)"
        )
    return SchemaStatus(side=side, where=where, current=current, head=head)


def _upgrade(engine: Engine, side: Side, version_table: str) -> None:
    config = _alembic_config(side, version_table)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _ensure_database(target: DatabaseTarget) -> str | None:
    """Create a missing MariaDB database (utf8mb4); return its name if it was created."""
    if target.backend != "mysql":
        return None
    engine = make_engine(target.url)
    try:
        with engine.connect():
            return None
    except sa.exc.DBAPIError as error:
        if not is_unknown_database(error):
            raise DatabaseUnavailableError(describe_connection_error(target, error)) from None
    finally:
        engine.dispose()
    server = make_engine(target.url._replace(database=None))
    name = target.database.replace("`", "``")
    try:
        with server.begin() as connection:
            connection.execute(
                sa.text(
                    f"CREATE DATABASE IF NOT EXISTS `{name}` "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            )
    except sa.exc.DBAPIError as error:
        raise DatabaseUnavailableError(
            f"{target.setting}: database {target.database!r} does not exist and could not be "
            f"created ({error.orig})"
        ) from None
    finally:
        server.dispose()
    logger.info("Created database %s", target.database)
    return target.database


def engine_where(target: DatabaseTarget) -> str:
    """Describe where the engine tables are, for messages."""
    prefix = f" with table prefix {target.table_prefix!r}" if target.table_prefix else ""
    return f"{target.describe()}{prefix}"


def engine_schema_status(target: DatabaseTarget) -> SchemaStatus:
    """Report the revision of the engine schema at ``target``."""
    engine = make_engine(target.url, table_prefix=target.table_prefix, pool_size=1)
    try:
        check_connection(engine, target)
        version_table = engine_version_table(target.table_prefix)
        return _status(engine, "engine", version_table, engine_where(target))
    finally:
        engine.dispose()


def setup_engine_schema(config: St2Config) -> SetupResult:
    """Create or migrate the engine's tables where st2.conf says (``st2-setup-db``)."""
    created = _ensure_database(config.database)
    engine = make_st2_engine(config, pool_size=1)
    try:
        check_connection(engine, config.database)
        version_table = engine_version_table(config.database.table_prefix)
        where = engine_where(config.database)
        before = _status(engine, "engine", version_table, where)
        if not before.up_to_date:
            _upgrade(engine, "engine", version_table)
        after = _status(engine, "engine", version_table, where)
    finally:
        engine.dispose()
    return SetupResult(before=before, after=after, created_database=created)


def missing_engine_tables(engine: Engine, config: PoundCakeConfig) -> list[str]:
    """Return the engine tables the extension tables link to that do not exist."""
    prefix = config.engine_database.table_prefix
    with engine.connect() as connection:
        existing = set(sa.inspect(connection).get_table_names(schema=config.engine_schema))
    return [prefix + name for name in LINKED_ENGINE_TABLES if prefix + name not in existing]


def poundcake_schema_status(config: PoundCakeConfig) -> SchemaStatus:
    """Report the PoundCake schema's revision."""
    engine = make_poundcake_engine(config, pool_size=1)
    try:
        check_connection(engine, config.database)
        return _status(engine, "poundcake", POUNDCAKE_VERSION_TABLE, config.database.describe())
    finally:
        engine.dispose()


def setup_poundcake_schema(config: PoundCakeConfig) -> SetupResult:
    """Create or migrate PoundCake's tables and extension tables (``poundcake db init``)."""
    created = _ensure_database(config.database)
    engine = make_poundcake_engine(config, pool_size=1)
    try:
        check_connection(engine, config.database)
        missing = missing_engine_tables(engine, config)
        if missing:
            raise SchemaError(
                f"the engine tables {', '.join(missing)} are missing in "
                f"{engine_where(config.engine_database)}; run st2-setup-db first "
                "(and check ST2_DATABASE_URL / ST2_TABLE_PREFIX)"
            )
        where = config.database.describe()
        before = _status(engine, "poundcake", POUNDCAKE_VERSION_TABLE, where)
        if not before.up_to_date:
            _upgrade(engine, "poundcake", POUNDCAKE_VERSION_TABLE)
        after = _status(engine, "poundcake", POUNDCAKE_VERSION_TABLE, where)
    finally:
        engine.dispose()
    return SetupResult(before=before, after=after, created_database=created)
