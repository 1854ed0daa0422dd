"""A PoundCake layout in MariaDB databases of its own, built by the real commands
(``st2-setup-db``, ``poundcake db init``) as an administrator would and filled with linked rows:
what the backup, restore, grants and report tests run their commands against."""

from __future__ import annotations

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
    """Create the databases, the engine schema and PoundCake's schema; insert linked rows."""
    suffix = uuid.uuid4().hex[:10]
    databases = (
        (f"pctest_st2_{suffix}", f"pctest_pc_{suffix}") if two_databases else (f"pctest_{suffix}",)
    )
    for database in databases:
        create_fixture_database(database)
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
    if two_databases:
        layout.env["ST2_DATABASE_URL"] = f"{ROOT_URL}/{layout.engine_database}"
    for command in (("st2-setup-db",), ("poundcake", "db", "init")):
        result = run_command(command[0], *command[1:], env=layout.env, cwd=directory)
        assert result.returncode == 0, result.stdout + result.stderr
    engine = layout.engine()
    try:
        insert_poundcake_rows(engine, insert_engine_rows(engine))
    finally:
        engine.dispose()
    return layout


def drop_ops_layout(layout: OpsLayout) -> None:
    for database in reversed(layout.databases):
        drop_fixture_database(database)
