"""Multi-row INSERTs on MariaDB whose values shared by every row are escaped once.

SQLAlchemy and PyMySQL handle an ``executemany`` of N rows by processing and escaping every
value of every row, and by keying each one (``insertmanyvalues``), even when most columns carry
one value for the whole statement (the request id, a timestamp, a state). :func:`insert_rows`
renders the statement's ``VALUES`` list itself: the shared values are processed by their column
types and escaped by the driver once, each row's own values are processed and escaped by the
driver's ``mogrify`` (the escaping PyMySQL applies to every statement it sends), and the text
goes through the connection unchanged (``exec_driver_sql`` without parameters). Statements
and their column order come from SQLAlchemy's compiler, once per set of columns.

The rendered text holds the values, so an error names the statement without them (the
engine's ``hide_parameters`` promise holds here too), and it is sent verbatim: the
``table_prefix`` hook, which rewrites engine table names in a statement's text, must not touch
the values. Only tables of PoundCake's own (no schema, no engine table name) are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from poundcake.db.engine import VERBATIM
from poundcake.db.naming import ENGINE_TABLE_NAMES

ENGINE_TABLES = frozenset(ENGINE_TABLE_NAMES)
ROWS_PER_STATEMENT = 500
"""Rows per statement: 500 alerts' rows stay far below MariaDB's ``max_allowed_packet``."""

# cursor.execute(sql) with no arguments at all: PyMySQL then sends the text as it is.
_AS_IS = {"no_parameters": True, VERBATIM: True}
_VALUES = re.compile(r"\sVALUES\s*(\((?:\s*%(?:\(\w+\))?s\s*,?)+\))", re.IGNORECASE)
_NAMED = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True, slots=True)
class _Rendering:
    """A compiled statement cut around its ``VALUES`` row, with each column's processor."""

    head: str
    tail: str
    keys: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]


_renderings: dict[tuple[sa.Insert, str, tuple[str, ...]], _Rendering] = {}


def _rendering(statement: sa.Insert, dialect: Dialect, keys: tuple[str, ...]) -> _Rendering:
    cache_key = (statement, dialect.name, keys)
    found = _renderings.get(cache_key)
    if found is not None:
        return found
    table = statement.table
    if not isinstance(table, sa.Table) or table.schema is not None or table.name in ENGINE_TABLES:
        raise ValueError("insert_rows: only PoundCake's own tables (no schema, no prefix)")
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    text = str(compiled)
    match = _VALUES.search(text)
    if match is None or "%" in text[: match.start(1)] + text[match.end(1) :]:
        raise ValueError("insert_rows: not an INSERT whose only parameters are its VALUES row")
    # The bind names are the column keys: in the text (pyformat) or in order (format).
    names = _NAMED.findall(match.group(1)) or list(compiled.positiontup or ())
    columns = [statement.table.c[name] for name in names]
    rendering = _Rendering(
        head=text[: match.start(1)],
        tail=text[match.end(1) :],
        keys=tuple(names),
        processors=tuple(column.type.bind_processor(dialect) for column in columns),
    )
    _renderings[cache_key] = rendering
    return rendering


def _default(statement: sa.Insert, key: str) -> Any:
    """The scalar Python default of a column the rows leave out."""
    default = statement.table.c[key].default
    if not isinstance(default, ScalarElementColumnDefault):
        raise ValueError(f"insert_rows: no value and no scalar default for {key!r}")
    return default.arg


def insert_rows(
    connection: sa.Connection,
    statement: sa.Insert,
    rows: Sequence[Mapping[str, Any]],
    shared: Mapping[str, Any],
) -> list[sa.Row[Any]]:
    """Insert ``rows`` (each with the same keys), every one also carrying ``shared``'s values.

    ``statement`` is a plain ``insert(table)``, optionally with ``ON DUPLICATE KEY UPDATE`` or
    ``RETURNING``; the rows it returns are returned, in insertion order. MariaDB only.
    """
    if not rows:
        return []
    dialect = connection.dialect
    row_keys = tuple(rows[0])
    rendering = _rendering(statement, dialect, (*row_keys, *shared))
    dbapi_connection: Any = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    own: list[tuple[str, Callable[[Any], Any] | None]] = []
    pieces: list[str] = []
    for key, processor in zip(rendering.keys, rendering.processors, strict=True):
        if key in shared or key not in row_keys:
            value = shared[key] if key in shared else _default(statement, key)
            value = processor(value) if processor is not None else value
            # The shared literal becomes part of the row template, which mogrify formats.
            pieces.append(cursor.mogrify("%s", (value,)).replace("%", "%%"))
        else:
            own.append((key, processor))
            pieces.append("%s")
    template = "(" + ", ".join(pieces) + ")"
    returned: list[sa.Row[Any]] = []
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        values = ", ".join(
            cursor.mogrify(
                template,
                tuple(
                    processor(row[key]) if processor is not None else row[key]
                    for key, processor in own
                ),
            )
            for row in rows[start : start + ROWS_PER_STATEMENT]
        )
        sql = rendering.head + values + rendering.tail
        try:
            result = connection.exec_driver_sql(sql, execution_options=_AS_IS)
        except sa.exc.StatementError as error:
            error.statement = rendering.head + f"... ({len(rows)} rows, values hidden)"
            raise
        if result.returns_rows:
            returned.extend(result.all())
    return returned
