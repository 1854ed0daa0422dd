"""Restore backups made by :mod:`poundcake.ops.backup`, checking every file first.

A dump is accepted only if it is complete (its trailer's SHA-256 matches the body), ours (the
header says so and the body creates the tables the header lists), fits the configured layout
(the same part, database role and table prefix) and carries schema revisions this version
knows. The server must also accept the dump's longest statement (``max_allowed_packet``): the
``mysql`` client stops at a statement the server refuses, with the tables before it replaced
and the rest not restored. Only when every given file passes is anything restored.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from poundcake.config import PoundCakeConfig
from poundcake.db.engine import check_connection, make_engine
from poundcake.db.migrate import MIGRATIONS
from poundcake.db.naming import (
    LINKED_ENGINE_TABLES,
    POUNDCAKE_VERSION_TABLE,
    engine_version_table,
)
from poundcake.exceptions import DatabaseError, SchemaError, ValidationError
from poundcake.ops.backup import (
    FORMAT,
    HEADER,
    MIB,
    TRAILER,
    Part,
    StatementMeter,
    client_defaults,
    client_tool,
    layout_parts,
    read_revisions,
    server_packet_limit,
)

logger = logging.getLogger(__name__)

POUNDCAKE_REQUIRED = (
    POUNDCAKE_VERSION_TABLE,
    "poundcake_alerts",
    "poundcake_api_calls",
    "poundcake_st2_action_extensions",
    "poundcake_st2_rule_extensions",
    "poundcake_st2_execution_extensions",
    "poundcake_st2_webhook_extensions",
)
SQLITE_MAGIC = b"SQLite format 3\x00"
# The largest packet the mysql client accepts, so that only the server's limit applies.
CLIENT_MAX_PACKET = 1 << 30


@dataclass(frozen=True)
class CheckedDump:
    """A backup file that passed every check, and the database it goes to."""

    path: Path
    part: Part
    revisions: dict[str, str]
    statements: StatementMeter = field(default_factory=StatementMeter)


def known_revisions(side: str) -> set[str]:
    """Return every migration revision this version of PoundCake knows for ``side``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / side))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


def required_tables(part: Part) -> set[str]:
    """Return the tables a dump of ``part`` must hold."""
    required: set[str] = set()
    if part.has_engine:
        required.add(engine_version_table(part.table_prefix))
        required.update(part.table_prefix + name for name in LINKED_ENGINE_TABLES)
    if part.has_poundcake:
        required.update(POUNDCAKE_REQUIRED)
    return required


def _refuse(path: Path, problem: str) -> ValidationError:
    return ValidationError(f"{path}: {problem}; nothing was restored")


def _check_revisions(path: Path, revisions: dict[str, str], part: Part) -> None:
    expected = {"engine"} if part.role == "engine" else {"poundcake"}
    if part.role == "unified":
        expected = {"engine", "poundcake"}
    if set(revisions) != expected:
        raise _refuse(path, f"it records revisions for {sorted(revisions)}, expected {expected}")
    for side, revision in sorted(revisions.items()):
        if revision not in known_revisions(side):
            raise _refuse(
                path,
                f"its {side} schema is at revision {revision!r}, which this version of PoundCake "
                "does not know (made by a newer release?)",
            )


def _match_part(path: Path, header: dict[str, Any], parts: list[Part]) -> Part:
    role = header.get("role")
    for part in parts:
        if part.role != role:
            continue
        if header.get("table_prefix") != part.table_prefix:
            raise _refuse(
                path,
                f"its engine tables carry the prefix {header.get('table_prefix')!r} but the "
                f"configured prefix is {part.table_prefix!r}",
            )
        return part
    layout = " and ".join(part.role for part in parts)
    raise _refuse(path, f"it is a {role!r} dump but the configured layout has {layout} databases")


def _read_header(path: Path, first: bytes) -> dict[str, Any]:
    if not first.startswith(HEADER.encode()):
        raise _refuse(path, "not a PoundCake backup (no poundcake-backup header)")
    try:
        header = json.loads(first[len(HEADER) :])
    except ValueError:
        raise _refuse(path, "its poundcake-backup header is damaged") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _refuse(path, "unsupported poundcake-backup format")
    return header


def _scan_body(path: Path) -> tuple[dict[str, Any], set[str], StatementMeter]:
    """Read the whole dump: header, tables it creates, the size of its statements; raise unless
    the trailer matches."""
    digest = hashlib.sha256()
    size = 0
    statements = StatementMeter()
    created: set[str] = set()
    trailer: dict[str, Any] | None = None
    with path.open("rb") as dump:
        header = _read_header(path, dump.readline())
        for line in dump:
            if line.startswith(TRAILER.encode()):
                trailer = json.loads(line[len(TRAILER) :])
                break
            digest.update(line)
            size += len(line)
            if line.startswith(b"CREATE TABLE `"):
                created.add(line.split(b"`")[1].decode())
            if not line.startswith(b"--"):
                statements.feed(line)
        extra = dump.read(1)
    if trailer is None or extra:
        raise _refuse(path, "the dump is truncated (its poundcake-backup-end trailer is missing)")
    if trailer.get("bytes") != size or trailer.get("sha256") != digest.hexdigest():
        raise _refuse(path, "the dump is truncated or altered (its checksum does not match)")
    return header, created, statements


def _check_mariadb(path: Path, parts: list[Part]) -> CheckedDump:
    header, created, statements = _scan_body(path)
    part = _match_part(path, header, parts)
    listed = set(header.get("tables") or [])
    missing = sorted(required_tables(part) - listed)
    if missing:
        raise _refuse(path, f"it lacks the tables {', '.join(missing)}")
    not_created = sorted(listed - created)
    if not_created:
        raise _refuse(path, f"its body does not create the tables {', '.join(not_created)}")
    revisions = header.get("revisions") or {}
    _check_revisions(path, revisions, part)
    return CheckedDump(path, part, revisions, statements)


def _check_statement_sizes(dump: CheckedDump) -> None:
    target = dump.part.target
    db_engine = make_engine(target.url.set(database=None), pool_size=1)
    try:
        check_connection(db_engine, target)
        with db_engine.connect() as connection:
            limit = server_packet_limit(connection)
    finally:
        db_engine.dispose()
    needed = dump.statements.packet_needed(limit)
    if needed is None:
        return
    raise _refuse(
        dump.path,
        f"a statement in it is {dump.statements.largest} bytes, more than the server accepts "
        f"(max_allowed_packet = {limit}); raise max_allowed_packet to at least {needed // MIB}M "
        "(SET GLOBAL, and in the [mysqld] section of the server's configuration), then restore",
    )


def _check_sqlite(path: Path, parts: list[Part]) -> CheckedDump:
    with path.open("rb") as file:
        if file.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise _refuse(path, "not a PoundCake backup (neither a dump nor an SQLite file)")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as copy:
            page_size, pages = (
                copy.execute("PRAGMA page_size").fetchone()[0],
                copy.execute("PRAGMA page_count").fetchone()[0],
            )
            integrity = copy.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise _refuse(path, f"the SQLite file is damaged or truncated ({error})") from None
    if integrity != "ok" or path.stat().st_size < page_size * pages:
        raise _refuse(path, "the SQLite file is damaged or truncated")
    sqlite_parts = [part for part in parts if part.target.backend == "sqlite"]
    if not sqlite_parts:
        raise _refuse(path, "an SQLite backup cannot be restored into MariaDB")
    part = sqlite_parts[0]
    db_engine = make_engine(URL.create("sqlite", database=str(path)), pool_size=1)
    try:
        with db_engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
            missing = sorted(required_tables(part) - tables)
            if missing:
                raise _refuse(path, f"it lacks the tables {', '.join(missing)}")
            revisions = read_revisions(connection, part, tables)
    except SchemaError as error:
        raise _refuse(path, str(error)) from None
    finally:
        db_engine.dispose()
    _check_revisions(path, revisions, part)
    return CheckedDump(path, part, revisions)


def check_backups(
    config: PoundCakeConfig, files: list[Path], *, admin_url: URL | None = None
) -> list[CheckedDump]:
    """Check every file against the configured layout; raise on the first problem."""
    if not files:
        raise ValidationError("name at least one backup file to restore")
    parts = layout_parts(config, admin_url)
    checked: list[CheckedDump] = []
    for path in files:
        if not path.is_file():
            raise ValidationError(f"{path}: no such file; nothing was restored")
        if path.stat().st_size == 0:
            raise _refuse(path, "the file is empty")
        with path.open("rb") as file:
            is_sqlite = file.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
        found = _check_sqlite(path, parts) if is_sqlite else _check_mariadb(path, parts)
        if parts[0].target.backend == "sqlite" and not is_sqlite:
            raise _refuse(path, "a MariaDB dump cannot be restored into the embedded SQLite file")
        if any(earlier.part.role == found.part.role for earlier in checked):
            raise _refuse(path, f"a second {found.part.role!r} dump was given")
        checked.append(found)
    for dump in checked:
        if dump.part.target.backend != "sqlite":
            _check_statement_sizes(dump)
    order = {"engine": 0, "unified": 0, "poundcake": 1}
    return sorted(checked, key=lambda dump: order[dump.part.role])


def _restore_mariadb(dump: CheckedDump) -> None:
    target = dump.part.target
    name = target.database.replace("`", "``")
    preamble = (
        f"CREATE DATABASE IF NOT EXISTS `{name}` "
        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
        f"USE `{name}`;\n"
    ).encode()
    tool = client_tool("mariadb", "mysql")
    # The client echoes a failing statement (megabytes, maybe) before its error: to a file, so
    # a full pipe never blocks it while we write its input.
    with (
        client_defaults(target.url) as defaults,
        dump.path.open("rb") as body,
        tempfile.TemporaryFile() as errors,
    ):
        process = subprocess.Popen(  # noqa: S603 - fixed tool, our own arguments
            [
                tool,
                f"--defaults-file={defaults}",
                "--batch",
                "--default-character-set=utf8mb4",
                f"--max-allowed-packet={CLIENT_MAX_PACKET}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        assert process.stdin is not None
        try:
            process.stdin.write(preamble)
            for chunk in iter(lambda: body.read(1 << 16), b""):
                process.stdin.write(chunk)
            process.stdin.close()
        except BrokenPipeError:
            pass
        if process.wait() != 0:
            raise DatabaseError(
                f"restoring {dump.path} into {target.describe()} failed: {_client_error(errors)}"
            )


def _client_error(errors: IO[bytes]) -> str:
    """Return the client's error line (``ERROR 1062 (23000) at line 42: ...``), shortened."""
    errors.seek(max(0, errors.seek(0, io.SEEK_END) - 4096))
    lines = errors.read().decode(errors="replace").strip().splitlines() or ["no message"]
    found = [line for line in lines if line.startswith("ERROR")] or lines
    return found[-1][:500]


def _restore_sqlite(dump: CheckedDump) -> None:
    live = Path(dump.part.target.database)
    live.parent.mkdir(parents=True, exist_ok=True)
    with (
        closing(sqlite3.connect(f"file:{dump.path}?mode=ro", uri=True)) as source,
        closing(sqlite3.connect(live, timeout=30)) as destination,
    ):
        source.backup(destination)


def restore(
    config: PoundCakeConfig, files: list[Path], *, admin_url: URL | None = None
) -> list[CheckedDump]:
    """Check every file, then restore them (engine first); return what was restored."""
    checked = check_backups(config, files, admin_url=admin_url)
    for dump in checked:
        if dump.part.target.backend == "sqlite":
            _restore_sqlite(dump)
        else:
            _restore_mariadb(dump)
        logger.info("Restored %s into %s", dump.path, dump.part.target.database)
    return checked
