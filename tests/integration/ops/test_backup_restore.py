"""``poundcake backup`` and ``poundcake restore`` in every layout, on the real MariaDB server.

Each layout is built by the real commands (``st2-setup-db``, ``poundcake db init``) in uniquely
named databases, filled with linked rows, backed up, damaged, and restored; a round trip must
give back every table's checksum and every foreign key. Realistic values (durations to the last
digit, timestamps with microseconds, emoji, a result of megabytes) come back exactly through our
commands and through the install guide's own ``mysqldump``/``mysql``.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from poundcake.config import Settings, load_poundcake_config
from poundcake.db.engine import make_poundcake_engine
from poundcake.engine.models import ExecutionDB, ExecutionOutputDB
from poundcake.ids import new_id
from poundcake.remediation.models import Alert, ApiCall
from tests.integration.support.commands import command_environment, run_command
from tests.integration.support.layouts import insert_engine_rows, insert_poundcake_rows
from tests.integration.support.mariadb import (
    ADMIN_HOST,
    ADMIN_PORT,
    admin_sql,
    create_fixture_database,
)
from tests.integration.support.ops_layout import (
    OpsLayout,
    build_ops_layout,
    drop_ops_layout,
)

LAYOUTS = {
    "prefixed": ("st2_", False),
    "single": ("", False),
    "two": ("", True),
}


@pytest.fixture(params=sorted(LAYOUTS))
def layout(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpsLayout]:
    prefix, two = LAYOUTS[request.param]
    built = build_ops_layout(request.param, tmp_path / request.param, prefix, two)
    try:
        yield built
    finally:
        drop_ops_layout(built)


def table_checksums(layout: OpsLayout) -> dict[str, tuple[int, int]]:
    """Row count and ``CHECKSUM TABLE ... EXTENDED`` of every table in the layout's databases."""
    found: dict[str, tuple[int, int]] = {}
    for database in layout.databases:
        tables = admin_sql(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
            f"'{database}' ORDER BY TABLE_NAME"
        )
        for (table,) in tables:
            name = f"`{database}`.`{table}`"
            count = admin_sql(f"SELECT COUNT(*) FROM {name}")[0][0]
            checksum = admin_sql(f"CHECKSUM TABLE {name} EXTENDED")[0][1]
            found[f"{database}.{table}"] = (int(str(count)), int(str(checksum)))
    return found


def foreign_keys(layout: OpsLayout) -> set[tuple[object, ...]]:
    """Every foreign key of the layout's databases, as information_schema describes it."""
    names = ", ".join(f"'{database}'" for database in layout.databases)
    rows = admin_sql(
        "SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.COLUMN_NAME, k.CONSTRAINT_NAME, "
        "k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, "
        "r.DELETE_RULE FROM information_schema.KEY_COLUMN_USAGE k "
        "JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
        "ON r.CONSTRAINT_SCHEMA = k.TABLE_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
        f"WHERE k.TABLE_SCHEMA IN ({names}) AND k.REFERENCED_TABLE_NAME IS NOT NULL"
    )
    return set(rows)


def damage(layout: OpsLayout) -> None:
    """Change data on both sides: delete linked rows, add a row, drop an extension table."""
    pc, st2 = layout.poundcake_database, layout.engine_database
    prefix = layout.prefix
    admin_sql(
        f"DELETE FROM `{pc}`.`poundcake_alerts`",
        f"DELETE FROM `{st2}`.`{prefix}action_db`",
        f"UPDATE `{st2}`.`{prefix}execution_db` SET status = 'failed'",
        "SET FOREIGN_KEY_CHECKS = 0",
        f"DROP TABLE `{pc}`.`poundcake_st2_webhook_extensions`",
    )


def backup_files(layout: OpsLayout, directory: Path) -> list[Path]:
    result = layout.poundcake("backup", "--output", str(directory))
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted(directory.iterdir())
    assert len(files) == len(layout.databases), files
    return files


def test_round_trip_restores_every_row_and_foreign_key(layout: OpsLayout, tmp_path: Path) -> None:
    before, keys = table_checksums(layout), foreign_keys(layout)
    assert keys, "the layout should have foreign keys"
    assert any(count for count, _ in before.values())
    files = backup_files(layout, tmp_path / "backups")
    if layout.name == "two":
        assert {path.name.rsplit("_", 2)[0] for path in files} == set(layout.databases)
    damage(layout)
    assert table_checksums(layout) != before
    result = layout.poundcake("restore", *map(str, reversed(files)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert table_checksums(layout) == before
    assert foreign_keys(layout) == keys


def insert_realistic_rows(layout: OpsLayout) -> None:
    """API calls with durations to the last digit, an alert with Unicode (emoji too) labels,
    and an execution with a result of a few megabytes and output in several scripts."""
    rng = random.Random(20)
    start = datetime(2026, 12, 7, 21, 8, 32, 123457, tzinfo=UTC)
    label = "wéb-1 🚀 磁盘 ✓"
    lines = [f'{i:06d} "{label}" C:\\Temp\\x 𝄞 load={rng.random()!r}' for i in range(40_000)]
    result = {
        "stdout": "\n".join(lines),
        "hosts": [{"host": f"{label}-{i}", "load": rng.uniform(0, 64)} for i in range(8_000)],
    }
    engine = layout.engine()
    try:
        with Session(engine) as session:
            session.add_all(
                ApiCall(
                    request_id=f"req-{new_id()}",
                    method="POST",
                    path=f"/api/v1/alerts/{label}",
                    status_code=202,
                    duration_ms=rng.uniform(0.001, 30_000),
                    user_agent=f"Alertmanager/0.27 {label}",
                    received_at=start + timedelta(microseconds=rng.randrange(10**9)),
                )
                for _ in range(200)
            )
            session.add(
                Alert(
                    id=new_id(),
                    fingerprint="f00d🍰",
                    starts_at=start,
                    alert_name="DiskFull",
                    alertmanager_status="firing",
                    state="received",
                    labels={"alertname": "DiskFull", "instance": label, "team": "Ωps 👩‍💻"},
                    annotations={"summary": f"Disk full on {label}"},
                    request_id="req-unicode",
                    last_request_id="req-unicode",
                    created_at=start,
                    updated_at=start + timedelta(microseconds=1),
                )
            )
            execution_id = new_id()
            session.add(
                ExecutionDB(
                    id=execution_id,
                    action="linux.check_disk",
                    runner_type="local-shell-cmd",
                    status="succeeded",
                    start_timestamp=start,
                    end_timestamp=start + timedelta(seconds=1, microseconds=999_999),
                    result=result,
                )
            )
            session.add(
                ExecutionOutputDB(
                    id=new_id(),
                    execution_id=execution_id,
                    action_ref="linux.check_disk",
                    runner_ref="local-shell-cmd",
                    timestamp=start,
                    output_type="stdout",
                    data=result["stdout"][:500_000],
                )
            )
            session.commit()
    finally:
        engine.dispose()


def table_definitions(layout: OpsLayout) -> dict[str, str]:
    """``SHOW CREATE TABLE`` of every table: column types, keys and the AUTO_INCREMENT counter."""
    found: dict[str, str] = {}
    for database in layout.databases:
        for (table,) in admin_sql(f"SHOW TABLES FROM `{database}`"):
            name = f"`{database}`.`{table}`"
            found[name] = str(admin_sql(f"SHOW CREATE TABLE {name}")[0][1])
    return found


def empty_databases(layout: OpsLayout) -> None:
    """Lose every database of the layout and create them empty again, as after a reinstall."""
    for database in reversed(layout.databases):  # PoundCake's first: its keys name the engine's
        create_fixture_database(database)


@pytest.mark.parametrize("name", ["prefixed", "two"])
def test_realistic_values_come_back_exactly(name: str, tmp_path: Path) -> None:
    prefix, two = LAYOUTS[name]
    layout = build_ops_layout(name, tmp_path / name, prefix, two)
    user, password = f"pcrt_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
    admin_sql(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
        *(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'" for database in layout.databases),
    )
    login = f"-u{user} -p{password} -h{ADMIN_HOST} -P{ADMIN_PORT}"
    try:
        insert_realistic_rows(layout)
        before, definitions = table_checksums(layout), table_definitions(layout)
        files = backup_files(layout, tmp_path / "backups")
        empty_databases(layout)
        restored = layout.poundcake("restore", *map(str, files))
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert table_checksums(layout) == before
        assert table_definitions(layout) == definitions

        # The install guide's "Backup Strategy", one database at a time, as it writes it.
        dumps = {database: tmp_path / f"{database}.sql" for database in layout.databases}
        for database, dump in dumps.items():
            subprocess.run(
                f"mysqldump {login} {database} > {dump}", shell=True, check=True, timeout=120
            )
        empty_databases(layout)
        for database, dump in dumps.items():
            subprocess.run(
                f"mysql {login} {database} < {dump}", shell=True, check=True, timeout=120
            )
        assert table_checksums(layout) == before
        assert table_definitions(layout) == definitions
    finally:
        admin_sql(f"DROP USER IF EXISTS '{user}'@'%'")
        drop_ops_layout(layout)


def test_a_statement_larger_than_the_server_accepts_is_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    layout = build_ops_layout("prefixed", tmp_path / "prefixed", "st2_", False)
    try:
        limit = int(str(admin_sql("SELECT @@global.max_allowed_packet")[0][0]))
        # A result of JSON-escaped backslashes, built on the server (as the engine stages large
        # results): each two bytes are dumped as four, so its INSERT is larger than the limit.
        pairs = limit * 3 // 10
        admin_sql(
            f"UPDATE `{layout.databases[0]}`.`st2_execution_db` SET result = "
            rf"""CONCAT('{{"stdout": "', REPEAT('\\\\', {pairs}), '"}}')"""
        )
        backed_up = layout.poundcake("backup", "--output", str(tmp_path / "backups"))
        assert backed_up.returncode == 0, backed_up.stdout + backed_up.stderr
        needed = backed_up.stderr.split("max_allowed_packet at ")[1].split("M or more")[0]
        assert int(needed) << 20 > limit
        admin_sql(f"DELETE FROM `{layout.poundcake_database}`.`poundcake_alerts`")
        damaged = table_checksums(layout)
        result = layout.poundcake("restore", *map(str, (tmp_path / "backups").iterdir()))
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"(max_allowed_packet = {limit}); raise max_allowed_packet" in result.stderr
        assert f"to at least {needed}M" in result.stderr
        assert "nothing was restored" in result.stderr
        assert table_checksums(layout) == damaged
    finally:
        drop_ops_layout(layout)


def resigned(dump: Path, old: bytes, new: bytes, target: Path) -> Path:
    """``dump`` with ``old`` replaced by ``new`` in its body and a trailer that matches."""
    header, rest = dump.read_bytes().split(b"\n", 1)
    body = rest[: rest.rindex(b"-- poundcake-backup-end ")].replace(old, new, 1)
    assert new in body
    trailer = json.dumps({"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()})
    target.write_bytes(b"\n".join([header, body + b"-- poundcake-backup-end " + trailer.encode()]))
    return target


def test_a_failing_statement_of_megabytes_ends_the_restore_with_the_servers_error(
    tmp_path: Path,
) -> None:
    layout = build_ops_layout("prefixed", tmp_path / "prefixed", "st2_", False)
    try:
        admin_sql(
            f"UPDATE `{layout.databases[0]}`.`st2_execution_db` SET result = "
            """CONCAT('{"stdout": "', REPEAT('x', 4 << 20), '"}')"""
        )
        (dump,) = backup_files(layout, tmp_path / "backups")
        # Not JSON any more: the server refuses the row, and the client echoes the statement.
        broken = resigned(dump, b'{\\"stdout\\": \\"x', b'{\\"stdout\\": x', tmp_path / "b.sql")
        result = layout.poundcake("restore", str(broken))
        assert result.returncode == 1, result.stdout + result.stderr
        assert "ERROR 4025 (23000)" in result.stderr
        assert "CONSTRAINT" in result.stderr
        assert len(result.stderr) < 1000
    finally:
        drop_ops_layout(layout)


def test_truncated_dump_is_refused_before_anything_changes(
    layout: OpsLayout, tmp_path: Path
) -> None:
    files = backup_files(layout, tmp_path / "backups")
    data = files[-1].read_bytes()
    truncated = tmp_path / "truncated.sql"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    altered = tmp_path / "altered.sql"
    altered.write_bytes(data.replace(b"INSERT INTO", b"INSERT  INTO", 1))
    admin_sql(f"DELETE FROM `{layout.poundcake_database}`.`poundcake_alerts`")
    damaged = table_checksums(layout)
    for path, problem in ((truncated, "truncated"), (altered, "altered")):
        result = layout.poundcake("restore", *map(str, files[:-1]), str(path))
        assert result.returncode == 1, result.stdout + result.stderr
        assert problem in result.stderr
        assert "nothing was restored" in result.stderr
        assert "Traceback" not in result.stderr
        assert table_checksums(layout) == damaged


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    layout = build_ops_layout("prefixed", tmp_path / "prefixed", "st2_", False)
    other = build_ops_layout("single", tmp_path / "single", "", False)
    try:
        files = backup_files(layout, tmp_path / "backups")
        plain = tmp_path / "plain.sql"
        with plain.open("wb") as output:
            subprocess.run(
                ["mysqldump", "-uroot", f"-h{ADMIN_HOST}", f"-P{ADMIN_PORT}", layout.databases[0]],
                stdout=output,
                check=True,
                timeout=120,
            )
        empty = tmp_path / "empty.sql"
        empty.write_bytes(b"")
        before = table_checksums(other)
        cases = (
            (plain, "not a PoundCake backup"),
            (empty, "empty"),
            (files[0], "prefix 'st2_' but the configured prefix is ''"),
            (tmp_path / "missing.sql", "no such file"),
        )
        for path, problem in cases:
            result = other.poundcake("restore", str(path))
            assert result.returncode == 1, result.stdout + result.stderr
            assert problem in result.stderr, result.stderr
        assert table_checksums(other) == before
    finally:
        drop_ops_layout(layout)
        drop_ops_layout(other)


def test_unified_dump_does_not_fit_two_databases(tmp_path: Path) -> None:
    unified = build_ops_layout("single", tmp_path / "single", "", False)
    two = build_ops_layout("two", tmp_path / "two", "", True)
    try:
        unified_files = backup_files(unified, tmp_path / "unified")
        two_files = backup_files(two, tmp_path / "separate")
        result = two.poundcake("restore", str(unified_files[0]))
        assert result.returncode == 1
        assert "'unified' dump but the configured layout has engine and poundcake" in result.stderr
        result = unified.poundcake("restore", str(two_files[0]))
        assert result.returncode == 1
        assert "layout has unified" in result.stderr
        result = two.poundcake("restore", str(two_files[1]), str(two_files[1]))  # the engine's
        assert result.returncode == 1
        assert "a second 'engine' dump" in result.stderr
    finally:
        drop_ops_layout(unified)
        drop_ops_layout(two)


def test_the_install_guides_restore_command_reads_our_dump(tmp_path: Path) -> None:
    layout = build_ops_layout("single", tmp_path / "single", "", False)
    try:
        before = table_checksums(layout)
        (dump,) = backup_files(layout, tmp_path / "backups")
        damage(layout)
        with dump.open("rb") as source:
            subprocess.run(
                ["mysql", "-uroot", f"-h{ADMIN_HOST}", f"-P{ADMIN_PORT}", layout.databases[0]],
                stdin=source,
                check=True,
                timeout=120,
            )
        assert table_checksums(layout) == before
    finally:
        drop_ops_layout(layout)


def test_credentials_stay_off_the_command_line_and_out_of_output(tmp_path: Path) -> None:
    layout = build_ops_layout("single", tmp_path / "single", "", False)
    user, password = f"pcbk_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
    admin_sql(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT ALL ON `{layout.databases[0]}`.* TO '{user}'@'%'",
    )
    try:
        layout.env["POUNDCAKE_ADMIN_DATABASE_URL"] = (
            f"mysql+pymysql://{user}:{password}@{ADMIN_HOST}:{ADMIN_PORT}/x"
        )
        before = table_checksums(layout)
        files = backup_files(layout, tmp_path / "backups")
        damage(layout)
        result = layout.poundcake("restore", str(files[0]))
        assert result.returncode == 0, result.stdout + result.stderr
        assert table_checksums(layout) == before
        assert password not in result.stdout + result.stderr
        assert password.encode() not in files[0].read_bytes()
        layout.env["POUNDCAKE_ADMIN_DATABASE_URL"] = (
            f"mysql+pymysql://{user}:wrong-{password}@{ADMIN_HOST}:{ADMIN_PORT}/x"
        )
        failed = layout.poundcake("backup", "--output", str(tmp_path / "denied"))
        assert failed.returncode == 1
        assert "access denied" in failed.stderr
        assert password not in failed.stdout + failed.stderr
    finally:
        admin_sql(f"DROP USER IF EXISTS '{user}'@'%'")
        drop_ops_layout(layout)


def sqlite_state(path: Path) -> tuple[dict[str, str], set[tuple[object, ...]]]:
    """Per-table digest of the sorted rows, and every foreign key, of an SQLite file."""
    digests: dict[str, str] = {}
    keys: set[tuple[object, ...]] = set()
    with closing(sqlite3.connect(path)) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            rows = sorted(repr(row) for row in connection.execute(f'SELECT * FROM "{table}"'))
            digests[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
            for key in connection.execute(f'PRAGMA foreign_key_list("{table}")'):
                keys.add((table, *key))
    return digests, keys


def test_embedded_sqlite_round_trip_and_refusals(tmp_path: Path) -> None:
    env = command_environment(tmp_path)
    for command in (("st2-setup-db",), ("poundcake", "db", "init")):
        result = run_command(command[0], *command[1:], env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    config = load_poundcake_config(Settings(POUNDCAKE_DATA_DIR=tmp_path / "data"))
    live = Path(config.database.database)
    engine = make_poundcake_engine(config, pool_size=1)
    try:
        insert_poundcake_rows(engine, insert_engine_rows(engine))
    finally:
        engine.dispose()
    before, keys = sqlite_state(live)
    assert keys and before

    backed_up = run_command("poundcake", "backup", "-o", str(tmp_path / "b"), env=env, cwd=tmp_path)
    assert backed_up.returncode == 0, backed_up.stdout + backed_up.stderr
    (copy,) = (tmp_path / "b").iterdir()
    assert copy.name.endswith(".sqlite3")
    with closing(sqlite3.connect(live)) as connection:
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("DELETE FROM poundcake_alerts")
        connection.execute("DELETE FROM action_db")
        connection.commit()
    damaged, _ = sqlite_state(live)
    assert damaged != before

    data = copy.read_bytes()
    truncated = tmp_path / "truncated.sqlite3"
    truncated.write_bytes(data[: len(data) // 2])
    foreign = tmp_path / "foreign.sqlite3"
    with closing(sqlite3.connect(foreign)) as connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
    other = build_ops_layout("single", tmp_path / "maria", "", False)
    try:
        (dump,) = backup_files(other, tmp_path / "maria-backup")
    finally:
        drop_ops_layout(other)
    for path, problem in (
        (truncated, "damaged or truncated"),
        (foreign, "lacks the tables"),
        (dump, "cannot be restored into the embedded SQLite file"),
    ):
        refused = run_command("poundcake", "restore", str(path), env=env, cwd=tmp_path)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert problem in refused.stderr
        assert sqlite_state(live)[0] == damaged

    restored = run_command("poundcake", "restore", str(copy), env=env, cwd=tmp_path)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert sqlite_state(live) == (before, keys)
