"""Back up PoundCake's and the engine's tables: one dump per database.

MariaDB is dumped with ``mariadb-dump``/``mysqldump --single-transaction`` (a consistent snapshot
without locking the services out); credentials reach the client through a temporary defaults
file, never its command line. Each dump is framed by two SQL comments, so ``mysql db < dump``
still works: a header naming what the dump holds (layout part, database, table prefix, tables,
schema revisions) and a trailer with the body's SHA-256, which :mod:`poundcake.ops.restore`
checks before it touches anything. The embedded SQLite file is copied with SQLite's online
backup API.

A dump writes each row as one ``INSERT``, which escaping can make twice the row's size; a server
refuses a statement longer than its ``max_allowed_packet``, so a backup measures its longest
statement and says when restoring it needs a larger setting than the server has.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import URL

from poundcake.config import DatabaseTarget, PoundCakeConfig
from poundcake.db.engine import check_connection, make_engine
from poundcake.db.naming import ENGINE_TABLE_NAMES, POUNDCAKE_VERSION_TABLE, engine_version_table
from poundcake.exceptions import DatabaseError, SchemaError

logger = logging.getLogger(__name__)

Role = Literal["unified", "poundcake", "engine"]
FORMAT = 1
HEADER = "-- poundcake-backup "
TRAILER = "-- poundcake-backup-end "
MIB = 1 << 20
DUMP_OPTIONS = (
    "--single-transaction",
    "--quick",
    "--routines",
    "--triggers",
    "--skip-events",
    "--hex-blob",
    "--no-tablespaces",
    "--skip-lock-tables",
    "--default-character-set=utf8mb4",
)


@dataclass(frozen=True)
class Part:
    """One database to dump: which tables of the layout it holds, and how to reach it."""

    role: Role
    target: DatabaseTarget
    table_prefix: str

    @property
    def has_engine(self) -> bool:
        """Tell whether this database holds the engine's tables."""
        return self.role in ("unified", "engine")

    @property
    def has_poundcake(self) -> bool:
        """Tell whether this database holds PoundCake's tables."""
        return self.role in ("unified", "poundcake")

    def ours(self, table: str) -> bool:
        """Tell whether ``table`` in this database belongs to the layout."""
        engine_tables = {self.table_prefix + name for name in ENGINE_TABLE_NAMES}
        engine_tables.add(engine_version_table(self.table_prefix))
        if self.has_poundcake and table.startswith("poundcake_"):
            return True
        return self.has_engine and table in engine_tables


@dataclass(frozen=True)
class BackupFile:
    """One file a backup wrote; ``packet_needed``: the ``max_allowed_packet`` its restore needs,
    when that is more than the server's."""

    role: Role
    path: Path
    database: str
    tables: int
    packet_needed: int | None = None


class StatementMeter:
    """The longest SQL statement of a dump read piece by piece (a statement ends a line with
    ``;``: the dump escapes line breaks inside values)."""

    def __init__(self) -> None:
        self.current = 0
        self.longest = 0
        self._semicolon_last = False

    def feed(self, piece: bytes) -> None:
        """Count ``piece``, the next bytes of the dump (cut anywhere)."""
        start = 0
        if self._semicolon_last and piece.startswith(b"\n"):
            self.longest = max(self.longest, self.current + 1)
            self.current, start = 0, 1
        while (end := piece.find(b";\n", start)) != -1:
            self.longest = max(self.longest, self.current + end + 2 - start)
            self.current, start = 0, end + 2
        self.current += len(piece) - start
        if piece:
            self._semicolon_last = piece.endswith(b";")

    @property
    def largest(self) -> int:
        """The longest statement so far, counting one not ended yet."""
        return max(self.longest, self.current)

    def packet_needed(self, limit: int) -> int | None:
        """Return the ``max_allowed_packet`` (whole MiB) a restore needs if ``limit`` is short."""
        if self.largest < limit:
            return None
        return -(-(self.largest + 1024) // MIB) * MIB


def server_packet_limit(connection: sa.Connection) -> int:
    """Return the server's ``max_allowed_packet``: the longest statement it accepts."""
    limit = connection.execute(sa.text("SELECT @@global.max_allowed_packet")).scalar()
    return int(str(limit))


def with_credentials(target: DatabaseTarget, admin_url: URL | None) -> DatabaseTarget:
    """Return ``target`` reached with ``admin_url``'s server and credentials, if given."""
    if admin_url is None or target.backend == "sqlite":
        return target
    url = admin_url.set(database=target.database)
    return DatabaseTarget(url=url, setting="--admin-url", table_prefix=target.table_prefix)


def layout_parts(config: PoundCakeConfig, admin_url: URL | None = None) -> list[Part]:
    """Return the databases of the configured layout: one (unified) or two (separate)."""
    prefix = config.engine_database.table_prefix
    if config.engine_schema is None:
        return [Part("unified", with_credentials(config.database, admin_url), prefix)]
    return [
        Part("engine", with_credentials(config.engine_database, admin_url), prefix),
        Part("poundcake", with_credentials(config.database, admin_url), prefix),
    ]


def read_revisions(connection: sa.Connection, part: Part, tables: set[str]) -> dict[str, str]:
    """Return the schema revision of each side the part holds; refuse a part with none."""
    revisions: dict[str, str] = {}
    sides = []
    if part.has_engine:
        sides.append(("engine", engine_version_table(part.table_prefix)))
    if part.has_poundcake:
        sides.append(("poundcake", POUNDCAKE_VERSION_TABLE))
    for side, table in sides:
        revision = None
        if table in tables:
            query: sa.Select[str] = sa.select(sa.column("version_num", sa.String)).select_from(
                sa.table(table)
            )
            revision = connection.execute(query).scalar()
        if revision is None:
            raise SchemaError(
                f"no {side} schema in {part.target.describe()} (table {table} is missing or "
                "empty); nothing to back up"
            )
        revisions[side] = str(revision)
    return revisions


@contextmanager
def client_defaults(url: URL) -> Iterator[Path]:
    """Write a MariaDB client defaults file (mode 0600) for ``url``; delete it afterwards."""

    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["[client]"]
    if url.username:
        lines.append(f"user={quoted(url.username)}")
    lines.append(f"password={quoted(url.password or '')}")
    socket = url.query.get("unix_socket")
    if isinstance(socket, str):
        lines.append(f"socket={quoted(socket)}")
    else:
        lines.append(f"host={quoted(url.host or 'localhost')}")
        lines.append(f"port={url.port or 3306}")
        lines.append("protocol=TCP")
    with tempfile.TemporaryDirectory(prefix="poundcake-client-") as directory:
        path = Path(directory) / "client.cnf"
        path.touch(mode=0o600)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        yield path


def client_tool(*names: str) -> str:
    """Find the first installed of ``names`` (``mariadb-dump``, ``mysqldump``...)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise DatabaseError(f"none of {', '.join(names)} is installed (install mariadb-client)")


def backup_name(part: Part, stamp: str) -> str:
    """Name the file for a part as the install guide's backup script does."""
    if part.target.backend == "sqlite":
        return f"poundcake_st2_unified_{stamp}.sqlite3"
    if part.role == "unified":
        return f"poundcake_st2_unified_{stamp}.sql"
    return f"{part.target.database}_{stamp}.sql"


def _dump_mariadb(part: Part, path: Path) -> tuple[int, int | None]:
    db_engine = make_engine(part.target.url, pool_size=1)
    try:
        check_connection(db_engine, part.target)
        with db_engine.connect() as connection:
            existing = set(sa.inspect(connection).get_table_names())
            tables = sorted(table for table in existing if part.ours(table))
            revisions = read_revisions(connection, part, existing)
            limit = server_packet_limit(connection)
    finally:
        db_engine.dispose()
    header = {
        "format": FORMAT,
        "role": part.role,
        "backend": "mysql",
        "database": part.target.database,
        "table_prefix": part.table_prefix,
        "tables": tables,
        "revisions": revisions,
        "created_at": datetime.now(UTC).isoformat(),
    }
    tool = client_tool("mariadb-dump", "mysqldump")
    digest = hashlib.sha256()
    size = 0
    statements = StatementMeter()
    partial = path.with_name(path.name + ".partial")
    with client_defaults(part.target.url) as defaults, partial.open("wb") as output:
        output.write((HEADER + json.dumps(header, sort_keys=True) + "\n").encode())
        command = [tool, f"--defaults-file={defaults}", *DUMP_OPTIONS, part.target.database]
        process = subprocess.Popen(  # noqa: S603 - fixed tool, our own arguments
            [*command, *tables], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        stdout = process.stdout
        assert stdout is not None
        for chunk in iter(lambda: stdout.read(1 << 16), b""):
            digest.update(chunk)
            statements.feed(chunk)
            size += len(chunk)
            output.write(chunk)
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if process.wait() != 0:
            partial.unlink(missing_ok=True)
            raise DatabaseError(
                f"{Path(tool).name} failed for {part.target.describe()}: {stderr.strip()}"
            )
        trailer = {"sha256": digest.hexdigest(), "bytes": size}
        output.write((TRAILER + json.dumps(trailer, sort_keys=True) + "\n").encode())
    partial.rename(path)
    return len(tables), statements.packet_needed(limit)


def _dump_sqlite(part: Part, path: Path) -> int:
    source_path = Path(part.target.database)
    if not source_path.is_file():
        raise SchemaError(f"no SQLite database at {source_path}; nothing to back up")
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    uri = f"file:{source_path}?mode=ro"
    with (
        closing(sqlite3.connect(uri, uri=True)) as source,
        closing(sqlite3.connect(partial)) as copy,
    ):
        source.backup(copy)
    db_engine = make_engine(URL.create("sqlite", database=str(partial)), pool_size=1)
    try:
        with db_engine.connect() as connection:
            existing = set(sa.inspect(connection).get_table_names())
            read_revisions(connection, part, existing)
    except SchemaError:
        partial.unlink(missing_ok=True)
        raise
    finally:
        db_engine.dispose()
    partial.rename(path)
    return sum(1 for table in existing if part.ours(table))


def backup(
    config: PoundCakeConfig, output: Path, *, admin_url: URL | None = None
) -> list[BackupFile]:
    """Dump every database of the configured layout into ``output``; return the files."""
    output.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    written = []
    for part in layout_parts(config, admin_url):
        path = output / backup_name(part, stamp)
        if path.exists():
            raise DatabaseError(f"{path} exists already; refusing to overwrite a backup")
        packet_needed = None
        if part.target.backend == "sqlite":
            tables = _dump_sqlite(part, path)
        else:
            tables, packet_needed = _dump_mariadb(part, path)
        logger.info("Backed up %s (%d tables) to %s", part.target.database, tables, path)
        written.append(BackupFile(part.role, path, part.target.database, tables, packet_needed))
    return written
