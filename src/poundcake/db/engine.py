"""SQLAlchemy engines for every layout: SQLite file, one MariaDB database, or two on one server.

Engine tables are declared under StackStorm's names in the placeholder schema ``st2_engine``.
Here each SQLAlchemy engine learns where they really are: ``schema_translate_map`` maps the
placeholder to the engine's database (or to none when it is the same database), and a statement
hook adds the ``table_prefix`` (``st2_action_db``) the way SQLAlchemy itself renders translated
schemas: by rewriting the final SQL string.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from poundcake.config import DatabaseTarget, PoundCakeConfig, St2Config
from poundcake.db.base import ENGINE_SCHEMA
from poundcake.db.naming import add_table_prefix
from poundcake.exceptions import DatabaseUnavailableError

logger = logging.getLogger(__name__)

_MYSQL_ACCESS_DENIED = 1045
_MYSQL_UNKNOWN_DATABASE = 1049
_MYSQL_CANNOT_CONNECT = {2002, 2003, 2005, 2006, 2013}


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _install_prefix(engine: Engine, prefix: str) -> None:
    def rewrite(
        _conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> tuple[str, Any]:
        return add_table_prefix(statement, prefix), parameters

    sa.event.listen(engine, "before_cursor_execute", rewrite, retval=True)


def make_engine(
    url: URL,
    *,
    table_prefix: str = "",
    engine_schema: str | None = None,
    pool_size: int = 10,
    timeout: float | None = None,
) -> Engine:
    """Build an engine for ``url`` that finds engine tables by ``engine_schema`` and prefix.

    MariaDB connections give up connecting after 10 s. ``timeout`` (services: the API and the
    workers) also bounds each read and write, and the wait for a pooled connection, so a frozen
    server fails a request as unavailable instead of holding it; without it (migrations,
    maintenance commands) a statement may run as long as it needs.
    """
    if url.get_backend_name() == "sqlite":
        Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        connect_args: dict[str, Any] = {"connect_timeout": 10}
        pool_options: dict[str, Any] = {}
        if timeout is not None:
            connect_args.update(read_timeout=timeout, write_timeout=timeout)
            pool_options["pool_timeout"] = timeout
        engine = sa.create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            **pool_options,
            pool_pre_ping=True,
            pool_recycle=3600,
            isolation_level="READ COMMITTED",
            # Statement parameters carry action parameters and results, which may be secret:
            # keep them out of error messages and logs.
            hide_parameters=True,
            connect_args=connect_args,
        )
    if table_prefix:
        _install_prefix(engine, table_prefix)
    return engine.execution_options(schema_translate_map={ENGINE_SCHEMA: engine_schema})


def make_st2_engine(config: St2Config, *, pool_size: int = 10) -> Engine:
    """Build the engine's own SQLAlchemy engine from st2.conf."""
    target = config.database
    return make_engine(target.url, table_prefix=target.table_prefix, pool_size=pool_size)


def make_poundcake_engine(
    config: PoundCakeConfig, *, pool_size: int = 10, service: bool = False
) -> Engine:
    """Build PoundCake's SQLAlchemy engine, which also reaches the engine's tables.

    A ``service`` engine (poundcake-api, -worker) waits at most
    ``POUNDCAKE_DATABASE_TIMEOUT_SECONDS`` for the database (see :func:`make_engine`).
    """
    return make_engine(
        config.database.url,
        table_prefix=config.engine_database.table_prefix,
        engine_schema=config.engine_schema,
        pool_size=pool_size,
        timeout=config.settings.database_timeout_seconds if service else None,
    )


def describe_connection_error(target: DatabaseTarget, error: sa.exc.DBAPIError) -> str:
    """Turn a driver error into one line naming the setting and what to check."""
    code = error.orig.args[0] if error.orig is not None and error.orig.args else None
    url = target.url
    where = url.query.get("unix_socket") or f"{url.host}:{url.port or 3306}"
    if target.backend == "sqlite":
        return f"{target.setting}: cannot open the SQLite file {url.database} ({error.orig})"
    if code == _MYSQL_ACCESS_DENIED:
        return (
            f"{target.setting}: access denied for user {url.username!r} on {where} "
            "(check the username and password)"
        )
    if code == _MYSQL_UNKNOWN_DATABASE:
        return f"{target.setting}: database {url.database!r} does not exist on {where}"
    if code in _MYSQL_CANNOT_CONNECT:
        return f"{target.setting}: cannot reach the database server at {where} ({error.orig})"
    return f"{target.setting}: database error on {where} ({error.orig})"


def check_connection(engine: Engine, target: DatabaseTarget) -> None:
    """Connect once; raise :class:`DatabaseUnavailableError` with a clear line if that fails."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as error:
        raise DatabaseUnavailableError(describe_connection_error(target, error)) from None


def is_unknown_database(error: sa.exc.DBAPIError) -> bool:
    """Tell whether a MariaDB error says the database does not exist."""
    return bool(
        error.orig is not None and error.orig.args and error.orig.args[0] == _MYSQL_UNKNOWN_DATABASE
    )
