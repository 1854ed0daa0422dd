"""A PoundCake layout in MariaDB databases of its own, built by the real commands
(``st2-setup-db``, ``poundcake db init``) as an administrator would and filled with linked rows:
what the backup, restore, grants and report tests run their commands against. Each test process
builds one layout of each kind with the commands and gives every test a copy of it."""

from __future__ import annotations

import atexit
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from poundcake.config import Settings, load_poundcake_config
from poundcake.db.engine import make_poundcake_engine
from tests.integration.support.commands import CommandResult, command_environment, run_command
from tests.integration.support.layouts import insert_engine_rows, insert_poundcake_rows
from tests.integration.support.mariadb import (
    ADMIN_HOST,
    ADMIN_PORT,
    admin_connection,
    create_fixture_database,
    drop_fixture_database,
)

ROOT_URL = f"mysql+pymysql://root@{ADMIN_HOST}:{ADMIN_PORT}"


@dataclass
class OpsLayout:
    """A layout in databases of its own, set up as an administrator would."""

    name: str
    directory: Path
    databases: tuple[str, ...]
    prefix: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def poundcake_database(self) -> str:
        return self.databases[-1]

    @property
    def engine_database(self) -> str:
        return self.databases[0]

    def poundcake(self, *args: str) -> CommandResult:
        return run_command("poundcake", *args, env=self.env, cwd=self.directory)

    def engine(self) -> sa.Engine:
        settings = Settings(**{key: value for key, value in self.env.items() if key.isupper()})
        return make_poundcake_engine(load_poundcake_config(settings), pool_size=1)


def build_ops_layout(name: str, directory: Path, prefix: str, two_databases: bool) -> OpsLayout:
    """A layout of its own, filled with linked rows: a copy of this process's template for that
    prefix and database count, which the real commands built the first time it was asked for."""
    key = (prefix, two_databases)
    template = _templates.get(key)
    if template is None:
        template = _build_with_commands(name, Path(tempfile.mkdtemp()), prefix, two_databases)
        _templates[key] = template
        if len(_templates) == 1:
            atexit.register(_drop_templates)
    databases = _new_databases(two_databases)
    for source, target in zip(template.databases, databases, strict=True):
        _copy_database(source, target, dict(zip(template.databases, databases, strict=True)))
    return _layout(name, directory, databases, prefix)


# One template per (prefix, two databases) per test process: building a layout runs every
# migration (about 10 s on MariaDB); copying one is a statement per table and per row set.
_templates: dict[tuple[str, bool], OpsLayout] = {}


def _drop_templates() -> None:
    for template in _templates.values():
        drop_ops_layout(template)


def _new_databases(two_databases: bool) -> tuple[str, ...]:
    suffix = uuid.uuid4().hex[:10]
    databases = (
        (f"pctest_st2_{suffix}", f"pctest_pc_{suffix}") if two_databases else (f"pctest_{suffix}",)
    )
    for database in databases:
        create_fixture_database(database)
    return databases


def _layout(name: str, directory: Path, databases: tuple[str, ...], prefix: str) -> OpsLayout:
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "st2.conf"
    conf.write_text(
        f"[database]\nbackend = mysql\nhost = {ADMIN_HOST}\nport = {ADMIN_PORT}\n"
        f"username = root\ndb_name = {databases[0]}\ntable_prefix = {prefix}\n"
    )
    layout = OpsLayout(name, directory, databases, prefix)
    layout.env = command_environment(
        directory,
        ST2_CONFIG_PATH=str(conf),
        DATABASE_URL=f"{ROOT_URL}/{layout.poundcake_database}",
    )
    if len(databases) == 2:
        layout.env["ST2_DATABASE_URL"] = f"{ROOT_URL}/{layout.engine_database}"
    return layout


def _build_with_commands(name: str, directory: Path, prefix: str, two_databases: bool) -> OpsLayout:
    """Create the databases, the engine schema and PoundCake's schema with the real commands
    (``st2-setup-db``, ``poundcake db init``) as an administrator would; insert linked rows."""
    layout = _layout(name, directory, _new_databases(two_databases), prefix)
    for command in (("st2-setup-db",), ("poundcake", "db", "init")):
        result = run_command(command[0], *command[1:], env=layout.env, cwd=directory)
        assert result.returncode == 0, result.stdout + result.stderr
    engine = layout.engine()
    try:
        insert_poundcake_rows(engine, insert_engine_rows(engine))
    finally:
        engine.dispose()
    return layout


def _copy_database(source: str, target: str, renamed: dict[str, str]) -> None:
    """Every table of ``source`` (its definition as the server shows it, foreign keys included,
    and its rows) into the empty database ``target``; references to another database of the
    layout point to that database's copy."""
    with admin_connection(target) as connection, connection.cursor() as cursor:
        cursor.execute("SET SESSION foreign_key_checks = 0")
        cursor.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'",
            (source,),
        )
        tables = [row[0] for row in cursor.fetchall()]
        assert tables, f"template database {source} has no tables"
        for table in tables:
            cursor.execute(f"SHOW CREATE TABLE `{source}`.`{table}`")
            definition = cursor.fetchone()[1]
            for old, new in renamed.items():
                definition = definition.replace(f"`{old}`.", f"`{new}`.")
            cursor.execute(definition)
            cursor.execute(f"INSERT INTO `{table}` SELECT * FROM `{source}`.`{table}`")


def drop_ops_layout(layout: OpsLayout) -> None:
    for database in reversed(layout.databases):
        drop_fixture_database(database)
