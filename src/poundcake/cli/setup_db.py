"""``st2-setup-db``: create or migrate the engine schema where st2.conf says (install step 3)."""

from __future__ import annotations

import typer

from poundcake.cli.common import St2ConfigFile, handles_errors, out, quiet_migration_logs
from poundcake.config import load_st2_config
from poundcake.db.migrate import SetupResult, engine_where, setup_engine_schema

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


def report(result: SetupResult, what: str) -> None:
    """Say what a setup command did, or that there was nothing to do."""
    after = result.after
    if result.created_database:
        out.print(f"Created database {result.created_database}.")
    if not result.changed:
        out.print(
            f"{what} is up to date at revision {after.current} in {after.where}; nothing to do."
        )
    elif result.before.current is None:
        out.print(f"{what} created at revision {after.current} in {after.where}.")
    else:
        out.print(
            f"{what} migrated from revision {result.before.current} to {after.current} "
            f"in {after.where}."
        )


@app.command()
@handles_errors
def setup_db(
    config_file: St2ConfigFile = None,
) -> None:
    """Create or migrate the engine's tables; safe to run again."""
    quiet_migration_logs()
    config = load_st2_config(config_file)
    out.print(f"Using {config.source}: engine tables in {engine_where(config.database)}.")
    report(setup_engine_schema(config), "Engine schema")


def main() -> None:
    """Entry point of ``st2-setup-db``."""
    app()
