"""SQLAlchemy engines for every layout: SQLite file, one MariaDB database, or two on one server.

Engine tables are declared under StackStorm's names in the placeholder schema ``st2_engine``.
Here each SQLAlchemy engine learns where they really are: ``schema_translate_map`` maps the
placeholder to the engine's database (or to none when it is the same database), and a statement
hook adds the ``table_prefix`` (``st2_action_db``) the way SQLAlchemy itself renders translated
schemas: by rewriting the final SQL string.

MariaDB connections cost no round trip on their way in and out of the pool when none is needed:

* returned to the pool, a connection is rolled back only if the server's last answer says a
  transaction is still open (SQLAlchemy's own reset rolls back after every commit too, because a
  session's connection is closed after its transaction ended);
* taken from the pool, it is pinged (``pool_pre_ping``) unless the engine was made with
  ``ping_after_idle``: then only a connection unused that many seconds is pinged. A connection
  the server dropped while it was in recent use fails its first statement instead (a database
  error, which invalidates every older connection of the pool), so that setting is for callers
  that answer such an error as "unavailable, retry" (poundcake-api's 503).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pymysql
import sqlalchemy as sa
from pymysql.constants import SERVER_STATUS
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

from poundcake.config import DatabaseTarget, PoundCakeConfig, St2Config
from poundcake.db.base import ENGINE_SCHEMA
from poundcake.db.naming import add_table_prefix
from poundcake.exceptions import DatabaseUnavailableError

logger = logging.getLogger(__name__)

_MYSQL_ACCESS_DENIED = 1045
_MYSQL_UNKNOWN_DATABASE = 1049
_MYSQL_CANNOT_CONNECT = {2002, 2003, 2005, 2006, 2013}
_LAST_USED = "poundcake_last_used"
VERBATIM = "poundcake_verbatim"
"""Execution option: the statement's text holds its values and names no engine table, so the
``table_prefix`` hook leaves it as it is (``db/multirow.py``)."""


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _transaction_may_be_open(dbapi_connection: DBAPIConnection) -> bool:
    """Whether the server may still hold a transaction open on this connection.

    PyMySQL keeps the status flags of the server's last OK packet: a COMMIT or ROLLBACK answered
    clears ``SERVER_STATUS_IN_TRANS``. A result set ends in an EOF packet whose flags PyMySQL does
    not read, so after one (``_result`` without a status) the flags may be stale.
    """
    status = getattr(dbapi_connection, "server_status", None)
    if status is None:
        return True
    last = getattr(dbapi_connection, "_result", None)
    if last is not None and getattr(last, "server_status", None) is None:
        return True
    return bool(status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)


def _rollback_if_in_transaction(
    dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    """The pool's reset: roll back only what may still be open.

    A session's connection comes back after its COMMIT or ROLLBACK was answered (SQLAlchemy's own
    reset would send another ROLLBACK), or with its transaction rolled back by SQLAlchemy
    (``transaction_was_reset``).
    """
    if not state.transaction_was_reset and _transaction_may_be_open(dbapi_connection):
        dbapi_connection.rollback()


def _remember_use(_dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    record.info[_LAST_USED] = time.monotonic()


def _ping_after_idle(seconds: float) -> Any:
    def ping_if_idle(
        dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: Any
    ) -> None:
        last_used = record.info.get(_LAST_USED)
        if last_used is None or time.monotonic() - last_used < seconds:
            return
        try:
            dbapi_connection.ping(False)
        except pymysql.err.Error as error:
            # As pool_pre_ping does: every older connection is discarded, and another is opened.
            raise sa.exc.InvalidatePoolError(f"ping failed after idle ({error})") from error

    return ping_if_idle


def _install_prefix(engine: Engine, prefix: str) -> None:
    def rewrite(
        _conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        _executemany: bool,
    ) -> tuple[str, Any]:
        if context is not None and context.execution_options.get(VERBATIM):
            return statement, parameters
        return add_table_prefix(statement, prefix), parameters

    sa.event.listen(engine, "before_cursor_execute", rewrite, retval=True)


def make_engine(
    url: URL,
    *,
    table_prefix: str = "",
    engine_schema: str | None = None,
    pool_size: int = 10,
    timeout: float | None = None,
    ping_after_idle: float | None = None,
) -> Engine:
    """Build an engine for ``url`` that finds engine tables by ``engine_schema`` and prefix.

    MariaDB connections give up connecting after 10 s. ``timeout`` (services: the API and the
    workers) also bounds each read and write, and the wait for a pooled connection, so a frozen
    server fails a request as unavailable instead of holding it; without it (migrations,
    maintenance commands) a statement may run as long as it needs. ``ping_after_idle``: ping only
    connections unused for that many seconds (see the module's docstring), else every checkout.
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
            pool_pre_ping=ping_after_idle is None,
            pool_reset_on_return=None,
            pool_recycle=3600,
            isolation_level="READ COMMITTED",
            # Statement parameters carry action parameters and results, which may be secret:
            # keep them out of error messages and logs.
            hide_parameters=True,
            connect_args=connect_args,
        )
        sa.event.listen(engine.pool, "reset", _rollback_if_in_transaction)
        if ping_after_idle is not None:
            sa.event.listen(engine.pool, "checkin", _remember_use)
            sa.event.listen(engine.pool, "checkout", _ping_after_idle(ping_after_idle))
    if table_prefix:
        _install_prefix(engine, table_prefix)
    return engine.execution_options(schema_translate_map={ENGINE_SCHEMA: engine_schema})


def make_st2_engine(config: St2Config, *, pool_size: int = 10) -> Engine:
    """Build the engine's own SQLAlchemy engine from st2.conf."""
    target = config.database
    return make_engine(target.url, table_prefix=target.table_prefix, pool_size=pool_size)


def make_poundcake_engine(
    config: PoundCakeConfig,
    *,
    pool_size: int = 10,
    service: bool = False,
    ping_after_idle: float | None = None,
) -> Engine:
    """Build PoundCake's SQLAlchemy engine, which also reaches the engine's tables.

    A ``service`` engine (poundcake-api, -worker) waits at most
    ``POUNDCAKE_DATABASE_TIMEOUT_SECONDS`` for the database (see :func:`make_engine`, also for
    ``ping_after_idle``).
    """
    return make_engine(
        config.database.url,
        table_prefix=config.engine_database.table_prefix,
        engine_schema=config.engine_schema,
        pool_size=pool_size,
        timeout=config.settings.database_timeout_seconds if service else None,
        ping_after_idle=ping_after_idle,
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
