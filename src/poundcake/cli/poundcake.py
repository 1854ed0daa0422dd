"""``poundcake``: PoundCake's command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from poundcake.cli.approval_commands import add_approval_commands
from poundcake.cli.common import fail, handles_errors, out, quiet_migration_logs
from poundcake.cli.guard_commands import add_guard_commands
from poundcake.cli.ops_commands import add_ops_commands
from poundcake.cli.remediation_commands import add_remediation_commands
from poundcake.cli.remediation_ctl import add_process_commands
from poundcake.cli.setup_db import report
from poundcake.config import PoundCakeConfig, load_poundcake_config, load_settings
from poundcake.db.migrate import (
    engine_schema_status,
    engine_where,
    poundcake_schema_status,
    setup_poundcake_schema,
)

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="PoundCake: alert-driven remediation.",
)
db_app = typer.Typer(no_args_is_help=True, help="Create, inspect and migrate PoundCake's tables.")
app.add_typer(db_app, name="db")
add_remediation_commands(app)
add_guard_commands(app)
add_approval_commands(app)
add_process_commands(app)
add_ops_commands(app, db_app)

EnvFile = Annotated[
    Path | None, typer.Option("--env-file", help="Read settings from this file instead of ./.env.")
]


def _config(env_file: Path | None) -> PoundCakeConfig:
    return load_poundcake_config(load_settings(env_file))


@db_app.command("init")
@handles_errors
def db_init(env_file: EnvFile = None) -> None:
    """Create or migrate the PoundCake and extension tables (install step 9)."""
    quiet_migration_logs()
    config = _config(env_file)
    out.print(
        f"PoundCake tables in {config.database.describe()}; "
        f"engine tables in {engine_where(config.engine_database)}."
    )
    report(setup_poundcake_schema(config), "PoundCake schema")


@db_app.command("upgrade")
@handles_errors
def db_upgrade(env_file: EnvFile = None) -> None:
    """Migrate existing PoundCake tables to the newest revision."""
    quiet_migration_logs()
    config = _config(env_file)
    if poundcake_schema_status(config).current is None:
        fail(f"no PoundCake schema in {config.database.describe()}; run `poundcake db init` first")
    report(setup_poundcake_schema(config), "PoundCake schema")


@db_app.command("current")
@handles_errors
def db_current(env_file: EnvFile = None) -> None:
    """Show the revision of the engine schema and of the PoundCake schema."""
    config = _config(env_file)
    behind = False
    for status in (engine_schema_status(config.engine_database), poundcake_schema_status(config)):
        state = "head" if status.up_to_date else f"behind, head is {status.head}"
        if status.current is None:
            state = f"not created, head is {status.head}"
        behind = behind or not status.up_to_date
        out.print(f"{status.side}: {status.current or '-'} ({state}) in {status.where}")
    if behind:
        raise typer.Exit(code=3)


def main() -> None:
    """Entry point of ``poundcake``."""
    app()
